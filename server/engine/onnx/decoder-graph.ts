/**
 * The Qwen3-VL text decoder as one ONNX graph with a KV cache (spec §3), used for both prefill
 * (S prompt tokens, empty past) and decode steps (S = 1):
 *
 * inputs   input_ids [1, S] int64
 *          visual_embeds [1, S, D]     rows that replace `<|image_pad|>` embeddings (zeros elsewhere)
 *          deepstack [taps, 1, S, D]   added after layers 0..taps-1 (zeros at text rows / decode)
 *          rope_cos, rope_sin [S, headDim/2]   interleaved-MRoPE tables, shared by all layers
 *          past_key_<l>, past_value_<l> [1, kvHeads, P, headDim]
 *          seqlens_k [1] int32 (= P + S - 1), total_sequence_length [] int32 (= P + S)
 *          rotary_pads [4] int64       (rotary inside attention only) [P, 0, R - P - S, 0]: where
 *                                      the run's table rows go in the R-row cache attention reads
 *          num_logits [1] int64        how many trailing positions get logits (1 to S)
 *          returned_logits [1] int64   how many of those rows `logits` returns (num_logits or 0)
 * outputs  logits [returned_logits, vocab] for the last positions; present_key_<l>, present_value_<l>
 *          best_blocks [num_logits, B, 1], best_block_logits [num_logits, B, 128]
 *                                      the B blocks of 128 logits that hold each row's B best
 *
 * num_logits is 1 for prefill and plain decode steps; speculative verification asks for every
 * position of the run (the token plus its drafts), so the LM head only runs where it is needed.
 *
 * Attention is com.microsoft.GroupQueryAttention; past/present are plain tensors, so a WebGPU
 * session can keep them on the device (preferredOutputLocation 'gpu-buffer') and feed them
 * straight back. q/k RMSNorm come first, then MRoPE, in one of two forms:
 * - rotary inside attention (GPU builds whose head size GroupQueryAttention's rotary takes):
 *   do_rotary = 1 over a cos/sin cache that holds the run's rows at the rows of its positions
 *   in the KV cache (the table is MRoPE's, so any position layout works). Written in the
 *   pattern onnxruntime's WebGPU fusions recognise (q/k/v and gate/up as separate int4
 *   projections, Reshape-RMSNorm-Reshape before attention), so a layer there runs as one
 *   norm+QKV kernel, attention with the q/k norm and rotary in its prologue, o_proj, one
 *   norm+gate/up+SiLU kernel and down_proj; other providers run the same graph unfused.
 * - com.microsoft.RotaryEmbedding over the run's own table rows before attention (do_rotary
 *   = 0): the CPU build, and head sizes GroupQueryAttention's rotary does not take.
 */
import type { Qwen3VLConfig } from '../checkpoint/config';
import { TEXT_PREFIX } from '../checkpoint/weights';
import { DataType, type GraphBuilder, attr } from './graph-builder';
import {
  type LayerContext,
  addRmsNorm,
  floatBytes,
  fusedLinear,
  linear,
  matMulNBits,
  reshape,
  rmsNorm,
} from './layers';

export const DECODER_INPUTS = {
  ids: 'input_ids',
  visual: 'visual_embeds',
  deepstack: 'deepstack',
  cos: 'rope_cos',
  sin: 'rope_sin',
  seqlens: 'seqlens_k',
  total: 'total_sequence_length',
  numLogits: 'num_logits',
  returnedLogits: 'returned_logits',
  rotaryPads: 'rotary_pads',
  pastKey: (l: number) => `past_key_${l}`,
  pastValue: (l: number) => `past_value_${l}`,
} as const;

export const DECODER_OUTPUTS = {
  logits: 'logits',
  bestBlocks: 'best_blocks',
  bestBlockLogits: 'best_block_logits',
  nextToken: 'next_token',
  presentKey: (l: number) => `present_key_${l}`,
  presentValue: (l: number) => `present_value_${l}`,
  newKey: (l: number) => `new_key_t_${l}`,
  newValue: (l: number) => `new_value_${l}`,
} as const;

/** Inputs of the host-cache form (see hostCacheAttention). */
export const HOST_CACHE_INPUTS = {
  bias: 'attention_bias',
  pastKeyT: (l: number) => `past_key_t_${l}`,
  pastValue: (l: number) => `past_value_${l}`,
} as const;

/**
 * Where the KV cache lives. 'device': GroupQueryAttention with past and present tensors (the cache can
 * stay in GPU buffers and be appended in place). 'host': the cache is a pair of read-only
 * inputs the host owns; the graph returns only the new rows and the host appends them, so a
 * step copies no cache at all (onnxruntime-node cannot bind a CPU output in place).
 */
export type KvPlacement = 'device' | 'host';

/** Whether GroupQueryAttention's own rotary takes this head size (its cos/sin checks). */
export function attentionRotaryFits(headDim: number): boolean {
  return headDim % 16 === 0;
}

export function buildDecoderGraph(
  ctx: LayerContext,
  config: Qwen3VLConfig,
  kv: KvPlacement = 'device',
  options: {
    /** MRoPE inside GroupQueryAttention (default: wherever it fits, with the device cache). */
    rotaryInAttention?: boolean;
    /** Host cache: a run with an empty cache skips the cache's share of attention (see hostCacheAttention). */
    emptyCacheBranch?: boolean;
    /**
     * The forms WebGPU graph capture needs (device cache, rotary inside attention only). The
     * cache is one buffer of `capacity` rows per layer and K/V, past and present alike (bound
     * to the same buffer, appended in place): past/present [1, kvHeads, capacity, headDim];
     * rope_cos/rope_sin the whole [capacity, headDim/2] table, row r for cache position r
     * (GroupQueryAttention looks the run's rows up there); no rotary_pads.
     * With `staticRows`, a run of that many generated tokens with every shape fixed (a
     * captured run replays the recorded dispatches, so nothing may change size or live on
     * the host): input_ids [1, staticRows] (1: a decode step; more: a verification run); no
     * visual or DeepStack inputs; no num_logits or returned_logits: logits [staticRows, vocab]
     * and next_token [staticRows, 1], each row's greedy choice (ArgMax: the lowest id among
     * equal best, as the host picks). Without, the prompt form: any number of tokens with the
     * usual inputs, for prompts and runs of any length beside a captured step.
     */
    inPlaceCache?: { capacity: number; staticRows?: number };
  } = {},
): void {
  const { g, weights } = ctx;
  const t = config.text;
  const F = DataType.FLOAT;
  const act = ctx.dtype;
  const d = t.hiddenSize;
  const hd = t.headDim;
  const taps = Math.max(1, config.vision.deepstackVisualIndexes.length);
  const eps = t.rmsNormEps;
  const P = (name: string) => TEXT_PREFIX + name;
  const toActivation = (x: string) => (act === F ? x : g.op('Cast', [x], { to: attr.int(act) }));

  const cache = options.inPlaceCache;
  if (
    cache &&
    (kv !== 'device' || !attentionRotaryFits(hd) || options.rotaryInAttention === false)
  ) {
    throw new Error('an in-place cache needs the device cache and rotary inside attention');
  }
  // A static run: its rows fixed, generated tokens only.
  const fixed = cache?.staticRows !== undefined;
  const rows = cache?.staticRows ?? 'sequence';
  const ids = g.input(DECODER_INPUTS.ids, DataType.INT64, [1, rows]);
  const visual = fixed ? '' : toActivation(g.input(DECODER_INPUTS.visual, F, [1, 'sequence', d]));
  const deepstack = fixed
    ? ''
    : toActivation(g.input(DECODER_INPUTS.deepstack, F, [taps, 1, 'sequence', d]));
  const tableRows = cache ? cache.capacity : 'sequence';
  const cos = toActivation(g.input(DECODER_INPUTS.cos, F, [tableRows, hd / 2]));
  const sin = toActivation(g.input(DECODER_INPUTS.sin, F, [tableRows, hd / 2]));
  const seqlens = kv === 'device' ? g.input(DECODER_INPUTS.seqlens, DataType.INT32, [1]) : '';
  const total = kv === 'device' ? g.input(DECODER_INPUTS.total, DataType.INT32, []) : '';
  // [G, S, C+S] additive: 0 where a query may attend (valid cached rows, causal new rows).
  const bias =
    kv === 'host'
      ? toActivation(g.input(HOST_CACHE_INPUTS.bias, F, ['groups', 'sequence', 'key_rows']))
      : '';
  const rotaryInAttention =
    kv === 'device' && (options.rotaryInAttention ?? attentionRotaryFits(hd));
  // The run's S table rows placed at the rows of their cache positions (zeros elsewhere, never
  // read): attention's rotary looks rows up by position in the KV cache.
  const rotaryPads =
    rotaryInAttention && !cache ? g.input(DECODER_INPUTS.rotaryPads, DataType.INT64, [4]) : '';
  const [cosCache, sinCache] = cache
    ? [cos, sin]
    : rotaryInAttention
      ? [g.op('Pad', [cos, rotaryPads]), g.op('Pad', [sin, rotaryPads])]
      : ['', ''];
  // onnxruntime's WebGPU fusions want the projections as separate int4 matrix multiplies.
  const separateProjections = rotaryInAttention && ctx.linearFormat === 'int4';
  const projections = (x: string, prefixes: string[]) =>
    separateProjections
      ? prefixes.map((prefix) => linear(ctx, x, prefix))
      : fusedLinear(ctx, x, prefixes);
  const numLogits = fixed ? '' : g.input(DECODER_INPUTS.numLogits, DataType.INT64, [1]);
  const returnedLogits = fixed ? '' : g.input(DECODER_INPUTS.returnedLogits, DataType.INT64, [1]);

  // Embedding gather; int4 builds keep the table in fp16 (gathered rows are cast up).
  const headFormat = ctx.headFormat ?? ctx.linearFormat;
  const embedName = P('embed_tokens.weight');
  const embedShape = weights.shape(embedName, [t.vocabSize, d]);
  const embedType = headFormat === 'int4' ? DataType.FLOAT16 : act;
  const embed = g.initializer(embedName, embedType, embedShape, () =>
    floatBytes(weights.read(embedName), embedType),
  );
  let gathered = g.op('Gather', [embed, ids], { axis: attr.int(0) });
  if (embedType !== act) gathered = g.op('Cast', [gathered], { to: attr.int(act) });
  let h = gathered;
  if (!fixed) {
    const isImage = g.op('Equal', [ids, g.constInt64([config.imageTokenId], [])]);
    h = g.op('Where', [g.op('Unsqueeze', [isImage, g.constInt64([2])]), visual, gathered]);
  }

  // Row i of the tables belongs to token i of this run: RotaryEmbedding's positions start at 0.
  const firstRow = rotaryInAttention ? '' : g.constInt64([0]);

  // Each residual Add is fused with the norm that follows it; `a` is the current layer's
  // normed input and `h` the residual stream it came from.
  let a = rmsNorm(ctx, h, P('layers.0.input_layernorm.weight'), eps);
  for (let l = 0; l < t.numLayers; l++) {
    const p = P(`layers.${l}.`);
    // q, k and v: one matrix multiply, or three that onnxruntime fuses with the norm (WebGPU).
    const [qProj, kProj, v] = projections(
      a,
      ['q', 'k', 'v'].map((name) => `${p}self_attn.${name}_proj`),
    );
    const qk = (proj: string, name: 'q' | 'k', heads: number) => {
      const split = reshape(g, proj, [1, -1, heads, hd]);
      const normed = rmsNorm(ctx, split, `${p}self_attn.${name}_norm.weight`, eps);
      const joined = reshape(g, normed, [1, -1, heads * hd]);
      if (rotaryInAttention) return joined;
      // One fused op instead of split/negate/concat/multiply/add (rotate-half pairing).
      return g.op(
        'RotaryEmbedding',
        [joined, firstRow, cos, sin],
        { num_heads: attr.int(heads), interleaved: attr.int(0) },
        'com.microsoft',
      );
    };
    const q = qk(qProj, 'q', t.numHeads);
    const k = qk(kProj, 'k', t.numKvHeads);
    let attn: string;
    if (kv === 'host') {
      attn = hostCacheAttention(ctx, config, l, q, k, v, bias, options.emptyCacheBranch ?? false);
    } else {
      const cacheRows = cache ? cache.capacity : 'past';
      const pastK = g.input(DECODER_INPUTS.pastKey(l), act, [1, t.numKvHeads, cacheRows, hd]);
      const pastV = g.input(DECODER_INPUTS.pastValue(l), act, [1, t.numKvHeads, cacheRows, hd]);
      const rotary = rotaryInAttention ? [cosCache, sinCache] : [];
      [attn] = g.node('GroupQueryAttention', [q, k, v, pastK, pastV, seqlens, total, ...rotary], {
        outputs: [g.fresh('attn'), DECODER_OUTPUTS.presentKey(l), DECODER_OUTPUTS.presentValue(l)],
        domain: 'com.microsoft',
        attrs: {
          num_heads: attr.int(t.numHeads),
          kv_num_heads: attr.int(t.numKvHeads),
          scale: attr.float(1 / Math.sqrt(hd)),
          do_rotary: attr.int(rotaryInAttention ? 1 : 0),
          rotary_interleaved: attr.int(0),
        },
      });
      for (const present of [DECODER_OUTPUTS.presentKey(l), DECODER_OUTPUTS.presentValue(l)]) {
        g.output(present, act, [1, t.numKvHeads, cache ? cache.capacity : 'total', hd]);
      }
    }
    const attnOut = linear(ctx, attn, `${p}self_attn.o_proj`);
    const [m, h1] = addRmsNorm(ctx, h, attnOut, `${p}post_attention_layernorm.weight`, eps);
    const [gate, up] = projections(m, [`${p}mlp.gate_proj`, `${p}mlp.up_proj`]);
    const silu = g.op('Mul', [gate, g.op('Sigmoid', [gate])]);
    let mlpOut = linear(ctx, g.op('Mul', [silu, up]), `${p}mlp.down_proj`);
    if (!fixed && l < config.vision.deepstackVisualIndexes.length) {
      const tap = g.op('Gather', [deepstack, g.constInt64([l], [])], { axis: attr.int(0) });
      mlpOut = g.op('Add', [mlpOut, tap]);
    }
    if (l + 1 < t.numLayers) {
      const next = P(`layers.${l + 1}.input_layernorm.weight`);
      [a, h] = addRmsNorm(ctx, h1, mlpOut, next, eps);
    } else {
      h = g.op('Add', [h1, mlpOut]);
    }
  }

  // The last num_logits positions: [1, S, D] -> [N, D], final norm, tied (or separate) LM head.
  const lastRows = fixed
    ? h
    : g.op('Slice', [h, g.op('Neg', [numLogits]), g.constInt64([2 ** 62]), g.constInt64([1])]);
  const last = reshape(g, lastRows, [-1, d]);
  const normed = rmsNorm(ctx, last, P('norm.weight'), eps);
  let logits: string;
  const headName = t.tieWordEmbeddings ? embedName : 'lm_head.weight';
  if (headFormat === 'int4') {
    // MatMulNBits needs its own quantised copy; the gather above keeps the float table.
    logits = matMulNBits(ctx, normed, `${headName}.lm_head`, t.vocabSize, d, () =>
      weights.read(headName),
    );
  } else if (t.tieWordEmbeddings) {
    logits = g.op('Gemm', [normed, embed], { transB: attr.int(1) });
  } else {
    logits = linear(ctx, normed, 'lm_head');
  }
  if (act !== F) logits = g.op('Cast', [logits], { to: attr.int(F) });
  // A run that needs only each row's best logits (greedy, top-k sampling) returns no full rows:
  // the host then reads the best-logit blocks instead of the vocabulary, and does not scan it. An
  // input picks this rather than the fetched outputs, since onnxruntime-node must fetch every
  // output of a session that keeps some in GPU memory.
  if (fixed) {
    g.node('Identity', [logits], { outputs: [DECODER_OUTPUTS.logits] });
    // The greedy token, shaped as input_ids: the next step can take it without the host.
    g.node('ArgMax', [logits], {
      outputs: [DECODER_OUTPUTS.nextToken],
      attrs: { axis: attr.int(1), keepdims: attr.int(1) },
    });
    g.output(DECODER_OUTPUTS.nextToken, DataType.INT64, [rows, 1]);
  } else {
    g.node('Slice', [logits, g.constInt64([0]), returnedLogits, g.constInt64([0])], {
      outputs: [DECODER_OUTPUTS.logits],
    });
  }
  g.output(DECODER_OUTPUTS.logits, F, [fixed ? rows : 'returned_rows', t.vocabSize]);
  bestLogitBlocks(g, logits, t.vocabSize, fixed ? rows : 'logit_rows');
}

/** Logits per block, and how many blocks with the highest maxima the decoder returns. */
export const LOGIT_BLOCK = 128;
const BEST_BLOCKS = 32;

/** How many blocks of a row the best_block_* outputs hold. */
export function keptLogitBlocks(vocabSize: number): number {
  return Math.min(BEST_BLOCKS, Math.ceil(vocabSize / LOGIT_BLOCK));
}

/** How many best logits of a row the best_block_* outputs are sure to hold. */
export function topLogitsPerRow(vocabSize: number): number {
  return Math.min(BEST_BLOCKS, vocabSize);
}

/**
 * Where each row's best logits are, without sorting the vocabulary: the row is cut into blocks
 * of LOGIT_BLOCK, and the BEST_BLOCKS blocks with the highest maxima are returned whole (every
 * one of the row's BEST_BLOCKS best logits lies in one of them). The host picks the best from
 * those few thousand values. onnxruntime's WebGPU TopK sorts a long row in ~170 dispatches but
 * a row of up to 2,048 in one, hence the blocks; their indices come out [rows, BEST_BLOCKS, 1],
 * as GatherND takes them, so no int64 reshape is placed on the CPU mid-run.
 */
export function bestLogitBlocks(
  g: GraphBuilder,
  logits: string,
  vocabSize: number,
  rows: number | string = 'logit_rows',
): void {
  const blocks = Math.ceil(vocabSize / LOGIT_BLOCK);
  const padding = blocks * LOGIT_BLOCK - vocabSize;
  const padded = padding
    ? g.op('Pad', [
        logits,
        g.constInt64([0, 0, 0, padding]),
        g.constFloat([-Infinity], DataType.FLOAT, []),
      ])
    : logits;
  const grid = g.op('Reshape', [padded, g.constInt64([-1, blocks, LOGIT_BLOCK])]);
  const maxima = g.op('ReduceMax', [grid, g.constInt64([2])], { keepdims: attr.int(1) });
  const kept = keptLogitBlocks(vocabSize);
  g.node('TopK', [maxima, g.constInt64([kept])], {
    outputs: [g.fresh('block_maxima'), DECODER_OUTPUTS.bestBlocks],
    attrs: { axis: attr.int(1), largest: attr.int(1), sorted: attr.int(1) },
  });
  g.node('GatherND', [grid, DECODER_OUTPUTS.bestBlocks], {
    outputs: [DECODER_OUTPUTS.bestBlockLogits],
    attrs: { batch_dims: attr.int(1) },
  });
  g.output(DECODER_OUTPUTS.bestBlocks, DataType.INT64, [rows, kept, 1]);
  g.output(DECODER_OUTPUTS.bestBlockLogits, DataType.FLOAT, [rows, kept, LOGIT_BLOCK]);
}

/**
 * Grouped-query attention over a host-owned cache, without copying it: the cached keys come
 * transposed ([1, KV, hd, C]) and the values as [1, KV, C, hd], both read-only; the scores
 * against the cache and against the run's own new keys are computed apart and joined, the
 * bias masks stale cache rows (>= the valid length) and future new rows, and the new keys
 * (transposed) and values are returned for the host to append. Query head h uses key/value
 * head h / G, as in GroupQueryAttention (G = heads / kv heads).
 *
 * With `emptyCacheBranch` (the prefill decoder, which runs prompts) a run with an empty cache,
 * the first chunk of every prompt, takes an If branch that scores only the run's own rows: the
 * join and the two slices of the other branch each copy the S x S scores even when the cache
 * part is empty (a 1,024-token chunk: 480 of 5,400 ms in a profile of the 2B layout). The
 * int4 decoder leaves it out: its steps always have a cache.
 */
function hostCacheAttention(
  ctx: LayerContext,
  config: Qwen3VLConfig,
  l: number,
  q: string,
  k: string,
  v: string,
  bias: string,
  emptyCacheBranch: boolean,
): string {
  const { g } = ctx;
  const t = config.text;
  const hd = t.headDim;
  const heads = t.numHeads;
  const kvHeads = t.numKvHeads;
  const act = ctx.dtype;
  const scale = g.constFloat([1 / Math.sqrt(hd)], act, []);
  const pastKT = g.input(HOST_CACHE_INPUTS.pastKeyT(l), act, [1, kvHeads, hd, 'capacity']);
  const pastV = g.input(HOST_CACHE_INPUTS.pastValue(l), act, [1, kvHeads, 'capacity', hd]);
  // [1, S, H*hd] -> [1, H, S, hd] -> [1, KV, G, S, hd] (heads j*G .. j*G+G-1 share kv head j).
  // Against [1, KV, 1, hd, C] this is one S-row product per query head, broadcast over the
  // group: a decode step (S = 1) runs matrix-vector products, which read the cache about 1.5x
  // faster than the G-row products of [1, KV, G*S, hd] (measured over 28 layers at 1,024
  // cached rows: 17.2 -> 11.9 ms; 2,048: 36 -> 23 ms; a 280-token prefill unchanged).
  const qHeads = g.op('Transpose', [reshape(g, g.op('Mul', [q, scale]), [1, -1, heads, hd])], {
    perm: attr.ints([0, 2, 1, 3]),
  });
  const qGrouped = reshape(g, qHeads, [1, kvHeads, heads / kvHeads, -1, hd]);
  // The new rows go out as graph outputs straight from their Transposes (no Identity copy).
  const [newKT] = g.node('Transpose', [reshape(g, k, [1, -1, kvHeads, hd])], {
    outputs: [DECODER_OUTPUTS.newKey(l)],
    attrs: { perm: attr.ints([0, 2, 3, 1]) },
  });
  const [newV] = g.node('Transpose', [reshape(g, v, [1, -1, kvHeads, hd])], {
    outputs: [DECODER_OUTPUTS.newValue(l)],
    attrs: { perm: attr.ints([0, 2, 1, 3]) },
  });
  g.output(DECODER_OUTPUTS.newKey(l), act, [1, kvHeads, hd, 'sequence']);
  g.output(DECODER_OUTPUTS.newValue(l), act, [1, kvHeads, 'sequence', hd]);

  const perGroupOn = (b: GraphBuilder, x: string) => b.op('Unsqueeze', [x, b.constInt64([2])]);
  const capacity = g.op('Shape', [pastV], { start: attr.int(2), end: attr.int(3) });
  const withCache = (b: GraphBuilder): string => {
    const scores = b.op(
      'Concat',
      [
        b.op('MatMul', [qGrouped, perGroupOn(b, pastKT)]),
        b.op('MatMul', [qGrouped, perGroupOn(b, newKT)]),
      ],
      { axis: attr.int(-1) },
    );
    const probs = b.op('Softmax', [b.op('Add', [scores, bias])], { axis: attr.int(-1) });
    const fromCache = b.op('Slice', [probs, b.constInt64([0]), capacity, b.constInt64([4])]);
    const fromNew = b.op('Slice', [probs, capacity, b.constInt64([2 ** 62]), b.constInt64([4])]);
    return b.op('Add', [
      b.op('MatMul', [fromCache, perGroupOn(b, pastV)]),
      b.op('MatMul', [fromNew, perGroupOn(b, newV)]),
    ]);
  };
  // Against the run's own rows only (the cache is empty: the bias is [G, S, S]).
  const newRowsOnly = (b: GraphBuilder): string => {
    const scores = b.op('MatMul', [qGrouped, perGroupOn(b, newKT)]);
    const probs = b.op('Softmax', [b.op('Add', [scores, bias])], { axis: attr.int(-1) });
    return b.op('MatMul', [probs, perGroupOn(b, newV)]);
  };
  let out: string;
  if (emptyCacheBranch) {
    const empty = g.op('Equal', [capacity, g.constInt64([0])]);
    [out] = g.node('If', [empty], {
      attrs: {
        then_branch: attr.graph(g.subgraph(`attn_${l}_new_rows`, (b) => [[newRowsOnly(b), act]])),
        else_branch: attr.graph(g.subgraph(`attn_${l}_with_cache`, (b) => [[withCache(b), act]])),
      },
    });
  } else {
    out = withCache(g);
  }
  // [1, KV, G, S, hd] -> [1, H, S, hd] -> [1, S, H*hd]
  const perHead = reshape(g, out, [1, heads, -1, hd]);
  return reshape(g, g.op('Transpose', [perHead], { perm: attr.ints([0, 2, 1, 3]) }), [
    1,
    -1,
    heads * hd,
  ]);
}
