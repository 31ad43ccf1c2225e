/**
 * The Qwen3-VL vision tower (spec §2) as one ONNX graph, for one image per run:
 *
 * inputs   pixel_values [N, C*P*P]      one frame per patch, in 2x2 merge-block order
 *          pos_index [4, N] int64, pos_weight [4, N]   bilinear taps into the learned table
 *          rotary_cos, rotary_sin [N, headDim]         2D rotary tables
 * outputs  image_embeds [N/4, outHidden], deepstack_<i> [N/4, outHidden] per tap
 *
 * or, built in stages (CPU builds), one run per stage of consecutive blocks (VisionStage):
 *
 * inputs   stage (int64 scalar): which stage runs, 0 first
 *          pixel_values, pos_index, pos_weight: as above for stage 0, with no rows after it
 *          hidden_states [N, hidden]: the previous stage's hidden_out, no rows for stage 0
 *          rotary_cos, rotary_sin: as above
 * outputs  hidden_out [N, hidden] (no rows from the last stage), image_embeds (rows from the
 *          last stage only), deepstack_<i> (rows from the stage that holds its block)
 *
 * Stages exist because a run cannot be stopped: on the CPU the tower of a 1280x800 screenshot
 * runs 13 s on two cores, and a Stop (or a newer image) waited for all of it; between stages
 * the encoder checks for a stop (vision-encoder.ts). They are the branches of one graph (a
 * chain of If nodes on `stage`), each holding its own weights, rather than graphs of their own:
 * one session has one memory arena, where sessions of their own each kept an arena as large as
 * the whole tower's, or ran 10% slower without one; and onnxruntime prepacks the 8-bit weights
 * of a branch only when they are the branch's own (docs/bench/2026-11-27-cpu, session 17).
 *
 * The positional tables depend only on the grid, so the host computes them (vision-tables.ts).
 * The reference's patches hold Tp frames, all the same still image; the patch embedding is
 * linear, so its kernel is summed over them here and the input holds one frame (patchify.ts).
 */
import type { Qwen3VLConfig, VisionConfig } from '../checkpoint/config';
import { VISION_PREFIX } from '../checkpoint/weights';
import { DataType, attr } from './graph-builder';
import { type LayerContext, gelu, layerNorm, linear, linearFrom, reshape, weight } from './layers';

export const VISION_INPUTS = {
  pixels: 'pixel_values',
  posIndex: 'pos_index',
  posWeight: 'pos_weight',
  cos: 'rotary_cos',
  sin: 'rotary_sin',
  stage: 'stage',
  hidden: 'hidden_states',
} as const;

export const VISION_OUTPUTS = {
  embeds: 'image_embeds',
  hidden: 'hidden_out',
  deepstack: (i: number) => `deepstack_${i}`,
} as const;

/** Values per patch of one frame, the columns of pixel_values: channels x patch x patch. */
export function framePatchValues(v: VisionConfig): number {
  return v.inChannels * v.patchSize * v.patchSize;
}

/**
 * The patch embedding's Conv3d kernel [out, C, T, P, P] summed over its T frames:
 * [out, C*P*P], what a patch of T equal frames sees.
 */
export function foldFrames(kernel: Float32Array, v: VisionConfig): Float32Array {
  const slice = v.patchSize * v.patchSize;
  const frames = v.temporalPatchSize;
  const folded = new Float32Array(kernel.length / frames);
  for (let row = 0; row < folded.length / slice; row++) {
    // Row = output channel * C + input channel; its T frames follow one another.
    for (let t = 0; t < frames; t++) {
      const from = (row * frames + t) * slice;
      for (let i = 0; i < slice; i++) folded[row * slice + i] += kernel[from + i];
    }
  }
  return folded;
}

/** The blocks [from, to) of one stage of the tower. */
export interface VisionStage {
  from: number;
  to: number;
}

/** The tower's `depth` blocks in `count` stages (at most one per block) as even as they go. */
export function visionStages(depth: number, count: number): VisionStage[] {
  const n = Math.max(1, Math.min(count, depth));
  return Array.from({ length: n }, (_, i) => ({
    from: Math.round((i * depth) / n),
    to: Math.round(((i + 1) * depth) / n),
  }));
}

/** LayerNorm epsilon of every vision norm (nn.LayerNorm(eps=1e-6) in the reference). */
const VISION_EPS = 1e-6;

/** The tower's graph inputs, as the stages read them. */
interface TowerInputs {
  pixels: string;
  posIndex: string;
  posWeight: string;
  cos: string;
  sin: string;
  /** Staged graphs: the previous stage's output. */
  hidden?: string;
}

/** Builds the tower as one graph, in `stageCount` stages (1: one run, see the file's head). */
export function buildVisionGraph(ctx: LayerContext, config: Qwen3VLConfig, stageCount = 1): void {
  const { g } = ctx;
  const v = config.vision;
  const F = DataType.FLOAT;
  const stages = visionStages(v.depth, stageCount);
  const staged = stages.length > 1;
  const headDim = v.hiddenSize / v.numHeads;
  // Staged, the pixels and the hidden states have rows in different runs.
  const pixelRows = staged ? 'pixel_patches' : 'patches';
  const inputs: TowerInputs = {
    pixels: g.input(VISION_INPUTS.pixels, F, [pixelRows, framePatchValues(v)]),
    posIndex: g.input(VISION_INPUTS.posIndex, DataType.INT64, [4, pixelRows]),
    posWeight: g.input(VISION_INPUTS.posWeight, F, [4, pixelRows]),
    cos: g.input(VISION_INPUTS.cos, F, ['patches', headDim]),
    sin: g.input(VISION_INPUTS.sin, F, ['patches', headDim]),
  };
  const names = [
    VISION_OUTPUTS.embeds,
    ...v.deepstackVisualIndexes.map((_, i) => VISION_OUTPUTS.deepstack(i)),
  ];
  let values: string[];
  if (staged) {
    inputs.hidden = g.input(VISION_INPUTS.hidden, F, ['hidden_patches', v.hiddenSize]);
    const stage = g.input(VISION_INPUTS.stage, DataType.INT64, []);
    values = stageChain(ctx, config, stages, 0, stage, inputs);
    names.unshift(VISION_OUTPUTS.hidden);
  } else {
    values = stageOutputs(ctx, config, stages[0], inputs, false);
  }
  values.forEach((value, i) => {
    const hidden = names[i] === VISION_OUTPUTS.hidden;
    g.node('Identity', [value], { outputs: [names[i]] });
    g.output(names[i], F, hidden ? ['patches', v.hiddenSize] : ['tokens', v.outHiddenSize]);
  });
}

/**
 * Stage `index` if `stage` says so, else the stages after it: a chain of If nodes, the last
 * stage in the innermost else branch. Every branch has the staged outputs (stageOutputs).
 */
function stageChain(
  ctx: LayerContext,
  config: Qwen3VLConfig,
  stages: VisionStage[],
  index: number,
  stage: string,
  inputs: TowerInputs,
): string[] {
  const { g } = ctx;
  if (index === stages.length - 1) return stageOutputs(ctx, config, stages[index], inputs, true);
  const branch = (name: string, build: (inner: LayerContext) => string[]) =>
    attr.graph(
      g.subgraph(name, (b) => build({ ...ctx, g: b }).map((value) => [value, DataType.FLOAT]), {
        ownInitializers: true,
      }),
    );
  return g.node('If', [g.op('Equal', [stage, g.constInt64([index], [])])], {
    outputs: config.vision.deepstackVisualIndexes.length + 2,
    attrs: {
      then_branch: branch(`vision_stage_${index}`, (inner) =>
        stageOutputs(inner, config, stages[index], inputs, true),
      ),
      else_branch: branch(`vision_stages_after_${index}`, (inner) =>
        stageChain(inner, config, stages, index + 1, stage, inputs),
      ),
    },
  });
}

/**
 * The blocks of one stage, from the patches (the first stage) or the hidden states. Returns
 * the image embeddings (the last stage) and the DeepStack features of its blocks, in tap
 * order; `staged`, the hidden states first, and every output the stage does not make as an
 * empty tensor (no rows), so that every branch has the same outputs.
 */
function stageOutputs(
  ctx: LayerContext,
  config: Qwen3VLConfig,
  stage: VisionStage,
  inputs: TowerInputs,
  staged: boolean,
): string[] {
  const { g } = ctx;
  const v = config.vision;
  const F = DataType.FLOAT;
  const dv = v.hiddenSize;
  const heads = v.numHeads;
  const headDim = dv / heads;
  const mergedIn = dv * v.spatialMergeSize ** 2;
  const P = (name: string) => VISION_PREFIX + name;
  const toActivation = (x: string) =>
    ctx.dtype === F ? x : g.op('Cast', [x], { to: attr.int(ctx.dtype) });
  const toFloat = (x: string) => (ctx.dtype === F ? x : g.op('Cast', [x], { to: attr.int(F) }));
  const empty = (columns: number) => g.op('Identity', [g.constFloat([], F, [0, columns])]);

  let x =
    stage.from === 0
      ? embedPatches(ctx, config, inputs, toActivation)
      : toActivation(inputs.hidden as string);
  const cos = toActivation(inputs.cos);
  const sin = toActivation(inputs.sin);

  // Rotate-half rotary as one fused op per q and k (instead of split/negate/concat/multiply/
  // add: 0.55 of 15.7 s of a 1280x800 screenshot's tower on the CPU). Each table row holds its
  // angles twice (the pairs i and i + headDim/2 share one), and the op takes them once; its
  // positions start at 0, so patch i uses row i.
  const half = (table: string) =>
    g.op('Slice', [table, g.constInt64([0]), g.constInt64([headDim / 2]), g.constInt64([1])]);
  const [cosHalf, sinHalf] = [half(cos), half(sin)];
  const firstRow = g.constInt64([0]);
  const rotary = (t: string) =>
    g.op(
      'RotaryEmbedding',
      [reshape(g, t, [1, -1, dv]), firstRow, cosHalf, sinHalf],
      { num_heads: attr.int(heads), interleaved: attr.int(0) },
      'com.microsoft',
    );

  const deepstack: string[] = [];
  for (let i = stage.from; i < stage.to; i++) {
    const b = P(`blocks.${i}.`);
    // Attention (non-causal, one image).
    const a = layerNorm(ctx, x, `${b}norm1`, VISION_EPS);
    const qkv = reshape(g, linear(ctx, a, `${b}attn.qkv`, { bias: true }), [0, 3, heads, headDim]);
    const [q, k, val] = g.node('Split', [qkv], {
      outputs: 3,
      attrs: { axis: attr.int(1), num_outputs: attr.int(3) },
    });
    const attn = g.op(
      'MultiHeadAttention',
      [rotary(q), rotary(k), reshape(g, val, [1, -1, dv])],
      {
        num_heads: attr.int(heads),
        scale: attr.float(1 / Math.sqrt(headDim)),
      },
      'com.microsoft',
    );
    x = g.op('Add', [x, linear(ctx, reshape(g, attn, [-1, dv]), `${b}attn.proj`, { bias: true })]);
    // MLP.
    const m = layerNorm(ctx, x, `${b}norm2`, VISION_EPS);
    const h = gelu(g, linear(ctx, m, `${b}mlp.linear_fc1`, { bias: true }), 'tanh');
    x = g.op('Add', [x, linear(ctx, h, `${b}mlp.linear_fc2`, { bias: true })]);

    const tap = v.deepstackVisualIndexes.indexOf(i);
    if (tap >= 0) {
      // Postshuffle merger: merge the 2x2 window first, then LayerNorm over 4*dv.
      const prefix = P(`deepstack_merger_list.${tap}.`);
      const merged = layerNorm(ctx, reshape(g, x, [-1, mergedIn]), `${prefix}norm`, VISION_EPS);
      deepstack[tap] = mergerMlp(ctx, merged, prefix);
    }
  }

  const taps = v.deepstackVisualIndexes.map((_, i) =>
    deepstack[i] ? toFloat(deepstack[i]) : empty(v.outHiddenSize),
  );
  const last = stage.to === v.depth;
  let embeds: string | undefined;
  if (last) {
    // Final merger: LayerNorm per patch, then merge the window.
    const normed = layerNorm(ctx, x, P('merger.norm'), VISION_EPS);
    embeds = toFloat(mergerMlp(ctx, reshape(g, normed, [-1, mergedIn]), P('merger.')));
  }
  if (!staged) return [embeds as string, ...taps];
  return [last ? empty(dv) : toFloat(x), embeds ?? empty(v.outHiddenSize), ...taps];
}

/**
 * Patch embedding plus the learned position embedding: the first stage's start, from its
 * pixel and position-tap inputs.
 */
function embedPatches(
  ctx: LayerContext,
  config: Qwen3VLConfig,
  inputs: TowerInputs,
  toActivation: (x: string) => string,
): string {
  const { g } = ctx;
  const v = config.vision;
  const dv = v.hiddenSize;
  const patchIn = framePatchValues(v);
  const P = (name: string) => VISION_PREFIX + name;
  const pixels = toActivation(inputs.pixels);
  const { posIndex } = inputs;
  const posWeight = toActivation(inputs.posWeight);
  // Patch embedding: the Conv3d with kernel == stride is a MatMul over flattened patches, its
  // kernel folded over the repeated frames.
  const kernel = P('patch_embed.proj.weight');
  ctx.weights.shape(kernel, [dv, v.inChannels, v.temporalPatchSize, v.patchSize, v.patchSize]);
  const x = linearFrom(
    ctx,
    pixels,
    P('patch_embed.proj'),
    [dv, patchIn],
    () => foldFrames(ctx.weights.read(kernel), v),
    { bias: true, format: 'float' },
  );

  // Learned position embedding, bilinearly interpolated: sum_k table[idx_k] * w_k, in tap order.
  const table = weight(ctx, P('pos_embed.weight'), [v.numPositionEmbeddings, dv]);
  const taps = g.op('Mul', [
    g.op('Gather', [table, posIndex], { axis: attr.int(0) }),
    g.op('Unsqueeze', [posWeight, g.constInt64([2])]),
  ]);
  const [t0, t1, t2, t3] = g.node('Split', [taps], {
    outputs: 4,
    attrs: { axis: attr.int(0), num_outputs: attr.int(4) },
  });
  const pos = g.op('Add', [g.op('Add', [g.op('Add', [t0, t1]), t2]), t3]);
  return g.op('Add', [x, reshape(g, pos, [-1, dv])]);
}

/** fc1 -> exact (erf) GELU -> fc2, shared by the final and the DeepStack mergers. */
function mergerMlp(ctx: LayerContext, x: string, prefix: string): string {
  const h = gelu(ctx.g, linear(ctx, x, `${prefix}linear_fc1`, { bias: true }), 'none');
  return linear(ctx, h, `${prefix}linear_fc2`, { bias: true });
}
