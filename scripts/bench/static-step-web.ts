/**
 * The static decode step (decoder-graph.ts `staticStep`) on onnxruntime-web
 * (ort-web-in-node.ts), optionally with WebGPU graph capture: every input and output lives in a
 * GPU buffer of its own that the host writes or reads, past and present are one buffer per layer
 * and K/V (GroupQueryAttention appends in place), so every run has the same bindings and a
 * captured run can be replayed. Greedy decoding with it (a prompt runs token by token, the step
 * taking one token), and the time of static runs of several tokens (verification runs).
 */
import { readFileSync, statSync } from 'node:fs';
import { basename } from 'node:path';
import type { Qwen3VLConfig } from '../../server/engine/checkpoint/config';
import {
  DECODER_INPUTS,
  DECODER_OUTPUTS,
  LOGIT_BLOCK,
  keptLogitBlocks,
} from '../../server/engine/onnx/decoder-graph';
import { topLogitsFromBlocks } from '../../server/engine/runtime/best-logits';
import { MropeTables } from '../../server/engine/runtime/mrope';
import { GpuTensors, type GpuBuffer, keepRegistered, loadOrtWeb } from './ort-web-in-node';

/**
 * Weights onnxruntime-web can load: they pass through its 32-bit WebAssembly memory (4 GB, also
 * holding the graph and the runtime) on their way to the GPU.
 */
const WASM_WEIGHTS_LIMIT = 3.5e9;

/** A generation's tokens (the prompt's next token first) and timings. */
export interface Decoded {
  tokens: number[];
  promptMs: number;
  stepMs: number[];
}

export interface StaticGraph {
  /** The graph (its weights beside it in PATH.data). */
  path: string;
  config: Qwen3VLConfig;
  /** The rows of its cache. */
  capacity: number;
  /** Tokens a run takes (1: a decode step). */
  rows: number;
  /** Its cache's element type: float16 for fp16 and int4 builds. */
  cacheType: 'float16' | 'float32';
  capture: boolean;
}

interface StaticSession {
  /**
   * Queues a run of `tokens` at cache positions position, position+1, ... ('chosen': the token
   * the last run chose, still on the GPU; one-row graphs).
   */
  run(tokens: number[] | 'chosen', position: number): Promise<void>;
  /** Each row's greedy token, from its best logits (waits for the run). */
  readBest(): Promise<number[]>;
  /** The last run's chosen token, copied now; resolves once the queued work is done. */
  readChosenSoon(): Promise<number>;
  release(): Promise<void>;
}

/** The session with its buffers; the rotary table holds text positions 0, 1, ... */
async function openStatic(graph: StaticGraph): Promise<StaticSession> {
  const t = graph.config.text;
  const weights = statSync(`${graph.path}.data`).size;
  if (weights > WASM_WEIGHTS_LIMIT) {
    throw new Error(
      `${basename(graph.path)} has ${(weights / 1e9).toFixed(1)} GB of weights: onnxruntime-web loads them into its 4 GB WebAssembly memory, which cannot hold more than about ${WASM_WEIGHTS_LIMIT / 1e9} GB (use int4)`,
    );
  }
  const ort = loadOrtWeb();
  const session = await ort.InferenceSession.create(readFileSync(graph.path), {
    executionProviders: ['webgpu'],
    graphOptimizationLevel: 'all',
    enableGraphCapture: graph.capture,
    preferredOutputLocation: 'gpu-buffer',
    externalData: [
      { path: `${basename(graph.path)}.data`, data: readFileSync(`${graph.path}.data`) },
    ],
  });
  const gpu = await GpuTensors.of(ort);
  const { rows, capacity } = graph;
  const kept = keptLogitBlocks(t.vocabSize);
  const input = {
    ids: gpu.create('int64', [1, rows]),
    cos: gpu.create('float32', [capacity, t.headDim / 2]),
    sin: gpu.create('float32', [capacity, t.headDim / 2]),
    seqlens: gpu.create('int32', [1]),
    total: gpu.create('int32', []),
  };
  const output = {
    logits: gpu.create('float32', [rows, t.vocabSize]),
    blocks: gpu.create('int64', [rows, kept, 1]),
    blockLogits: gpu.create('float32', [rows, kept, LOGIT_BLOCK]),
    chosen: gpu.create('int64', [rows, 1]),
  };
  const feeds: Record<string, (typeof input)['ids']['tensor']> = {
    [DECODER_INPUTS.ids]: input.ids.tensor,
    [DECODER_INPUTS.cos]: input.cos.tensor,
    [DECODER_INPUTS.sin]: input.sin.tensor,
    [DECODER_INPUTS.seqlens]: input.seqlens.tensor,
    [DECODER_INPUTS.total]: input.total.tensor,
  };
  const fetches: typeof feeds = {
    [DECODER_OUTPUTS.logits]: output.logits.tensor,
    [DECODER_OUTPUTS.bestBlocks]: output.blocks.tensor,
    [DECODER_OUTPUTS.bestBlockLogits]: output.blockLogits.tensor,
    [DECODER_OUTPUTS.nextToken]: output.chosen.tensor,
  };
  const buffers: GpuBuffer[] = [...Object.values(input), ...Object.values(output)].map(
    (io) => io.buffer,
  );
  const cacheDims = [1, t.numKvHeads, capacity, t.headDim];
  for (let l = 0; l < t.numLayers; l++) {
    for (const [past, present] of [
      [DECODER_INPUTS.pastKey(l), DECODER_OUTPUTS.presentKey(l)],
      [DECODER_INPUTS.pastValue(l), DECODER_OUTPUTS.presentValue(l)],
    ]) {
      const cache = gpu.create(graph.cacheType, cacheDims);
      feeds[past] = fetches[present] = cache.tensor;
      buffers.push(cache.buffer);
    }
  }
  if (graph.capture) await keepRegistered(ort, buffers);
  const positions = Array.from({ length: capacity }, (_, i) => i);
  const table = new MropeTables(t).compute([positions, positions, positions]);
  gpu.write(input.cos.buffer, table.cos);
  gpu.write(input.sin.buffer, table.sin);

  return {
    async run(tokens, position) {
      if (tokens === 'chosen') gpu.copy(output.chosen.buffer, input.ids.buffer, 8);
      else gpu.write(input.ids.buffer, BigInt64Array.from(tokens, BigInt));
      gpu.write(input.seqlens.buffer, Int32Array.of(position + rows - 1));
      gpu.write(input.total.buffer, Int32Array.of(position + rows));
      await session.run(feeds, fetches);
    },
    async readBest() {
      const [blockIds, values] = await gpu.read(
        [output.blocks.buffer, output.blockLogits.buffer],
        [rows * kept * 8, rows * kept * LOGIT_BLOCK * 4],
      );
      return topLogitsFromBlocks(
        new BigInt64Array(blockIds),
        new Float32Array(values),
        kept,
        1,
        t.vocabSize,
      ).map((best) => best.ids[0]);
    },
    async readChosenSoon() {
      return Number(new BigInt64Array(await gpu.readSoon(output.chosen.buffer, 8))[0]);
    },
    async release() {
      await session.release();
      gpu.destroy();
    },
  };
}

/**
 * Greedy decoding of a text prompt (positions 0, 1, ...) with a one-row graph. `pipelined`:
 * each step takes the previous step's chosen token on the GPU (a buffer copy) and is queued
 * before that token reaches the host, which reads tokens one step behind, so the host's wait
 * leaves the critical path (a step's time is then the gap between two tokens). Otherwise each
 * step waits for its best logits, as the engine's steps do.
 */
export async function decodeStaticStep(
  graph: StaticGraph,
  prompt: number[],
  steps: number,
  pipelined = false,
): Promise<Decoded> {
  const session = await openStatic(graph);
  try {
    let started = performance.now();
    for (const [position, id] of prompt.entries()) await session.run([id], position);
    const tokens = await session.readBest();
    const promptMs = performance.now() - started;
    const stepMs: number[] = [];
    if (!pipelined) {
      for (let i = 0; i < steps; i++) {
        started = performance.now();
        await session.run([tokens[i]], prompt.length + i);
        tokens.push(...(await session.readBest()));
        stepMs.push(performance.now() - started);
      }
      return { tokens, promptMs, stepMs };
    }
    let pending: Promise<number> | undefined;
    let last = performance.now();
    const arrived = (token: number) => {
      tokens.push(token);
      const now = performance.now();
      stepMs.push(now - last);
      last = now;
    };
    for (let i = 0; i < steps; i++) {
      await session.run('chosen', prompt.length + i);
      const reading = session.readChosenSoon();
      if (pending) arrived(await pending);
      pending = reading;
    }
    if (pending) arrived(await pending);
    return { tokens, promptMs, stepMs };
  } finally {
    await session.release();
  }
}

/**
 * Times of `runs` static runs of the graph's rows at cache position `position` (the cache's
 * contents do not matter for the time), each waiting for its rows' best logits as a
 * verification run does; after three that compile shaders and, with capture, record.
 */
export async function timeStaticRuns(
  graph: StaticGraph,
  position: number,
  runs: number,
): Promise<number[]> {
  const session = await openStatic(graph);
  try {
    const tokens = Array.from({ length: graph.rows }, (_, i) => 1000 + i);
    const times: number[] = [];
    for (let i = 0; i < runs + 3; i++) {
      const started = performance.now();
      await session.run(tokens, position);
      await session.readBest();
      if (i >= 3) times.push(performance.now() - started);
    }
    return times;
  } finally {
    await session.release();
  }
}
