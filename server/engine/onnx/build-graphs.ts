/**
 * Builds the two ONNX files of a model (vision.onnx, decoder.onnx, each with its .data external
 * weights) for one precision, or, as a dry run, only constructs the graphs against a tensor
 * layout to prove every tensor is present, correctly shaped and consumed.
 */
import { writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import type { Qwen3VLConfig } from '../checkpoint/config';
import {
  type WeightSource,
  WeightTracker,
  validateWeights,
  LM_HEAD,
  VISION_PREFIX,
} from '../checkpoint/weights';
import type { GraphTarget, Precision } from '../contracts';
import { EngineError } from '../errors';
import { attentionRotaryFits, buildDecoderGraph } from './decoder-graph';
import {
  DryRunSink,
  type ExternalDataSink,
  FileDataSink,
  ReplayDataSink,
  type WrittenPlace,
} from './external-data';
import { DataType, GraphBuilder } from './graph-builder';
import type { LayerContext, WeightFormat } from './layers';
import { buildVisionGraph } from './vision-graph';

/**
 * The graphs of a build. `prefill` is the CPU int4 build's second decoder, for prompts (see
 * partPlan); other builds have none. A graph-capture build (GPU) has, instead of `decoder`, its
 * two in-place forms (decoder-graph.ts `inPlaceCache`): `promptForm` for prompts and
 * verification runs, `step` the one-token run that graph capture replays, and optionally
 * `verify`, a static run of a fixed number of tokens for speculative verification, captured
 * too. They hold the same weights in the same order, so the static forms read them from
 * promptForm's .data file.
 */
export const GRAPH_FILES = {
  vision: 'vision.onnx',
  decoder: 'decoder.onnx',
  prefill: 'decoder-prefill.onnx',
  promptForm: 'decoder-prompt.onnx',
  step: 'decoder-step.onnx',
  verify: 'decoder-verify.onnx',
} as const;
export type GraphPart = keyof typeof GRAPH_FILES;

/**
 * CPU builds run the vision tower one block per stage, one run each, for a Stop (or a newer
 * image) to wait one stage at most (vision-graph.ts). On two cores that is 0.65 s for a
 * 1280x800 screenshot and 1.4 s at the default pixel cap (1696x960), for 2-4% more tower than
 * in one run; in 8 stages the wait was 1.7 and 3.6 s, for 0-2% (scripts/bench/vision-formats.ts
 * --stages 1,24,8; docs/bench/2026-11-27-cpu, session 18). On GPUs the whole tower takes
 * 0.2 s, and there it stays one run.
 */
export function cpuVisionStageCount(depth: number): number {
  return depth;
}

/** How progress names each part. */
export const PART_LABELS: Record<GraphPart, string> = {
  vision: 'vision',
  decoder: 'decoder',
  prefill: 'prefill decoder',
  promptForm: 'decoder',
  step: 'decoder step',
  verify: 'decoder verification run',
};

/** The parts a build has (`capture`: a graph-capture build, see GRAPH_FILES). */
export function buildParts(
  precision: Precision,
  target: GraphTarget,
  capture?: GraphCapture,
): GraphPart[] {
  if (capture) {
    return capture.verifyRows
      ? ['vision', 'promptForm', 'step', 'verify']
      : ['vision', 'promptForm', 'step'];
  }
  return precision === 'int4' && target === 'cpu'
    ? ['vision', 'decoder', 'prefill']
    : ['vision', 'decoder'];
}

/** The opsets every graph with contrib operators (MatMulNBits and the like) declares. */
export const OPSETS = [
  { domain: '', version: 21 },
  { domain: 'com.microsoft', version: 1 },
];

/**
 * Names a build: the precision for the CPU, 'gpu-' + precision for GPUs, and for a
 * graph-capture build its cache capacity too (the graphs' shapes depend on it).
 */
export type BuildVariant = Precision | `gpu-${Precision}` | `gpu-${Precision}-captured-${string}`;

export function buildVariant(
  precision: Precision,
  target: GraphTarget,
  capture?: GraphCapture,
): BuildVariant {
  if (capture) {
    const verify = capture.verifyRows ? `-verify-${capture.verifyRows}` : '';
    return `gpu-${precision}-captured-${capture.capacity}${verify}`;
  }
  return target === 'gpu' ? `gpu-${precision}` : precision;
}

/**
 * A graph-capture build: its KV cache's rows (positions, prompt and answer together), and the
 * tokens of its captured verification run, if it has one.
 */
export interface GraphCapture {
  capacity: number;
  verifyRows?: number;
}

/** A graph-capture build's decoder forms. */
function isInPlaceForm(part: GraphPart): boolean {
  return part === 'promptForm' || isStaticForm(part);
}

/** The forms with fixed shapes, whose weights are the prompt form's. */
function isStaticForm(part: GraphPart): boolean {
  return part === 'step' || part === 'verify';
}

interface PartPlan {
  dtype: DataType;
  linearFormat: WeightFormat;
  headFormat?: WeightFormat;
}

/**
 * fp32 is the reference. fp16 stores weights and runs activations in half precision (norm
 * statistics stay fp32). int4 quantises the decoder's linear layers and LM head to 4-bit
 * blocks.
 *
 * The vision tower (the part most sensitive to quantisation) gets no 4-bit weights. On GPUs its
 * linears are 8-bit blocks of 32 (MatMulNBits, fp16 activations): onnxruntime's WebGPU
 * MatMulNBits runs a 1280x800 screenshot's 4,000 patches on a faster tiled kernel than its fp16
 * MatMul (the tower 268 -> 196 ms on an H200, features at cosine 0.9998 to fp16's;
 * docs/bench/2026-11-27-h200), where 4-bit blocks were no faster and drifted to 0.984. On the
 * CPU 8-bit channels with activations quantised per patch (layers.ts matMulInt8). Its linears
 * are compute-bound there, and onnxruntime's integer GEMM runs them about four times faster
 * than fp32 MatMul, in a quarter of the memory (the whole tower 1.8x faster at 1280x800,
 * attention being the rest); MLAS has no fast x86 fp16 path, and its int4 kernel is no faster
 * than fp32 at that many rows.
 *
 * For the same reason the CPU int4 build has a second decoder for prompts (`prefill`): its
 * layers' linears in 8 bits like the vision tower's, its embedding table and LM head as in the
 * int4 decoder (one row of logits, memory-bound). It holds the layer weights a second time, so
 * it is loaded only where memory allows (load-model.ts).
 */
export function partPlan(
  precision: Precision,
  part: GraphPart,
  target: GraphTarget = 'cpu',
): PartPlan {
  if (isInPlaceForm(part)) part = 'decoder';
  if (precision === 'fp16') return { dtype: DataType.FLOAT16, linearFormat: 'float' };
  if (precision === 'int4') {
    if (part === 'decoder') {
      return { dtype: target === 'gpu' ? DataType.FLOAT16 : DataType.FLOAT, linearFormat: 'int4' };
    }
    if (part === 'prefill') {
      return { dtype: DataType.FLOAT, linearFormat: 'int8', headFormat: 'int4' };
    }
    return target === 'gpu'
      ? { dtype: DataType.FLOAT16, linearFormat: 'int8-blocks' }
      : { dtype: DataType.FLOAT, linearFormat: 'int8' };
  }
  return { dtype: DataType.FLOAT, linearFormat: 'float' };
}

export interface BuildSummary {
  nodes: Record<GraphPart, number>;
  dataBytes: Record<GraphPart, number>;
  consumed: Set<string>;
}

/**
 * Builds both graphs. With `outDir` the files are written there; without it this is a dry run
 * (no weight is read). Either way the checkpoint's tensor list is validated first and every
 * tensor must be consumed by the graphs.
 */
export function buildGraphs(
  config: Qwen3VLConfig,
  source: WeightSource,
  precision: Precision,
  options: {
    outDir?: string;
    sourceName?: string;
    /** Default 'cpu'. */
    target?: GraphTarget;
    /** MatMulNBits accuracy_level for int4 (default 4); other levels are for comparisons. */
    int4AccuracyLevel?: number;
    /** GPU builds: MRoPE inside attention (default where it fits; false for comparisons). */
    rotaryInAttention?: boolean;
    /** A graph-capture build (target 'gpu'): the in-place decoder forms instead of `decoder`. */
    capture?: GraphCapture;
    /** Tensors of `part` written so far, out of `total`. */
    onProgress?: (part: GraphPart, done: number, total: number) => void;
  } = {},
): BuildSummary {
  validateWeights(config, source.shapes, options.sourceName ?? 'checkpoint');
  const target = options.target ?? 'cpu';
  const { capture } = options;
  if (capture && target !== 'gpu') {
    throw new EngineError('bad_request', 'graph capture needs the GPU build (target gpu)');
  }
  if (capture && !attentionRotaryFits(config.text.headDim)) {
    throw new EngineError(
      'bad_request',
      `graph capture needs MRoPE inside attention, which a head size of ${config.text.headDim} does not allow`,
    );
  }
  const isVision = (name: string) => name.startsWith(VISION_PREFIX);
  let [visionTensors, textTensors] = [0, 0];
  for (const name of source.shapes.keys()) {
    if (name === LM_HEAD && config.text.tieWordEmbeddings) continue;
    if (isVision(name)) visionTensors++;
    else textTensors++;
  }
  // Every decoder reads every text tensor.
  const totals: Record<GraphPart, number> = {
    vision: visionTensors,
    decoder: textTensors,
    prefill: textTensors,
    promptForm: textTensors,
    step: textTensors,
    verify: textTensors,
  };
  const zeros = () => ({ vision: 0, decoder: 0, prefill: 0, promptForm: 0, step: 0, verify: 0 });
  const summary: BuildSummary = { nodes: zeros(), dataBytes: zeros(), consumed: new Set() };
  // The prompt form's weights as written, for the step graph to point at.
  let promptFormData: WrittenPlace[] | undefined;
  for (const part of buildParts(precision, target, capture)) {
    options.onProgress?.(part, 0, totals[part]);
    let done = 0;
    const tracker = new WeightTracker(source, () =>
      options.onProgress?.(part, ++done, totals[part]),
    );
    const file = GRAPH_FILES[part];
    // Only the prompt form's tensors are looked up again (by the static forms).
    const written: WrittenPlace[] | undefined = part === 'promptForm' ? [] : undefined;
    const sink: ExternalDataSink = !options.outDir
      ? new DryRunSink()
      : isStaticForm(part) && promptFormData
        ? new ReplayDataSink(`${GRAPH_FILES.promptForm}.data`, promptFormData)
        : new FileDataSink(join(options.outDir, `${file}.data`), `${file}.data`, written);
    if (written) promptFormData = written;
    try {
      const g = new GraphBuilder(`qwen3vl_${part}`, sink);
      const ctx = layerContext(g, tracker, precision, part, target, options.int4AccuracyLevel);
      if (part === 'vision') {
        buildVisionGraph(
          ctx,
          config,
          target === 'cpu' ? cpuVisionStageCount(config.vision.depth) : 1,
        );
      } else if (capture && isInPlaceForm(part)) {
        const staticRows = part === 'step' ? 1 : part === 'verify' ? capture.verifyRows : undefined;
        buildDecoderGraph(ctx, config, 'device', {
          inPlaceCache: { capacity: capture.capacity, staticRows },
        });
      } else {
        buildDecoderGraph(ctx, config, target === 'cpu' ? 'host' : 'device', {
          rotaryInAttention: options.rotaryInAttention,
          emptyCacheBranch: part === 'prefill',
        });
      }
      if (sink instanceof ReplayDataSink) {
        sink.assertComplete();
        // Its weights were placed, not read: the form is built all the same.
        options.onProgress?.(part, totals[part], totals[part]);
      }
      const encoded = g.encode(OPSETS);
      if (options.outDir) writeFileSync(join(options.outDir, file), encoded);
      summary.nodes[part] = g.nodeCount;
      // A static form's weights are the prompt form's, in its file (a dry run counts them anyway).
      summary.dataBytes[part] = isStaticForm(part) ? 0 : sink.bytesWritten;
      for (const name of tracker.consumed) summary.consumed.add(name);
    } finally {
      sink.close();
    }
  }
  // A tied checkpoint may carry a duplicate lm_head; it is validated, not needed.
  const unused = [...source.shapes.keys()].filter(
    (name) => !summary.consumed.has(name) && !(name === LM_HEAD && config.text.tieWordEmbeddings),
  );
  if (unused.length > 0) {
    throw new EngineError(
      'bad_checkpoint',
      `tensors not consumed by the graphs: ${unused.slice(0, 5).join(', ')}${unused.length > 5 ? ` and ${unused.length - 5} more` : ''}`,
    );
  }
  return summary;
}

function layerContext(
  g: GraphBuilder,
  weights: WeightTracker,
  precision: Precision,
  part: GraphPart,
  target: GraphTarget,
  int4AccuracyLevel?: number,
): LayerContext {
  return {
    g,
    weights,
    ...partPlan(precision, part, target),
    int4AccuracyLevel,
    // GPU builds: no zero points, so onnxruntime's WebGPU fusions take the projections.
    int4Symmetric: target === 'gpu',
  };
}

/**
 * The GPU build's decoder with its cache in place (decoder-graph.ts `inPlaceCache`): with
 * `staticRows`, the static run WebGPU graph capture can replay (1 row: a decode step); without,
 * the prompt form beside it. For scripts/bench/capture-decode.ts's static runs of any number
 * of rows (a model's graph-capture build, buildGraphs `capture`, has the prompt form and the
 * one-row step).
 * Written to `path` (weights in `path`.data) when given; either way the encoded graph is
 * returned (a dry run reads no weight).
 */
export function buildInPlaceDecoder(
  config: Qwen3VLConfig,
  source: WeightSource,
  precision: Precision,
  capacity: number,
  options: { path?: string; staticRows?: number } = {},
): Uint8Array {
  validateWeights(config, source.shapes, 'checkpoint');
  const { path, staticRows } = options;
  const sink: ExternalDataSink = path
    ? new FileDataSink(`${path}.data`, `${basename(path)}.data`)
    : new DryRunSink();
  let encoded: Uint8Array;
  try {
    const g = new GraphBuilder('qwen3vl_decoder_in_place', sink);
    const ctx = layerContext(g, new WeightTracker(source), precision, 'decoder', 'gpu');
    buildDecoderGraph(ctx, config, 'device', { inPlaceCache: { capacity, staticRows } });
    encoded = g.encode(OPSETS);
  } finally {
    sink.close();
  }
  // Written last, so a graph that exists has all its weights.
  if (path) writeFileSync(path, encoded);
  return encoded;
}
