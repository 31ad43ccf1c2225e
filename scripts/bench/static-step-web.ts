/**
 * The decoder's in-place forms (decoder-graph.ts `inPlaceCache`) on onnxruntime-web
 * (ort-web-in-node.ts), the static runs optionally with WebGPU graph capture: their inputs and
 * outputs live in GPU buffers of their own that the host writes or reads, past and present are
 * one buffer per layer and K/V (GroupQueryAttention appends in place), shared by every session
 * of the decoder, so every run has the same bindings and a captured run can be replayed. Greedy
 * decoding (the prompt token by token through the step, or in one run of the prompt form), and
 * the time of static runs of several tokens (verification runs).
 */
import { readFileSync, statSync } from 'node:fs';
import { basename } from 'node:path';
import type * as Ort from 'onnxruntime-web';
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
}

/**
 * What every session of one decoder binds alike: the cache (one GPU buffer per layer and K/V,
 * fed as past and fetched as present) and the rotary table (text positions 0, 1, ...).
 */
interface SharedBindings {
  gpu: GpuTensors;
  /** past_* and present_* names, and rope_cos/rope_sin, to their tensors. */
  tensors: Record<string, Ort.Tensor>;
}

function createSession(path: string, capture: boolean): Promise<Ort.InferenceSession> {
  const weights = statSync(`${path}.data`).size;
  if (weights > WASM_WEIGHTS_LIMIT) {
    throw new Error(
      `${basename(path)} has ${(weights / 1e9).toFixed(1)} GB of weights: onnxruntime-web loads them into its 4 GB WebAssembly memory, which cannot hold more than about ${WASM_WEIGHTS_LIMIT / 1e9} GB (use int4)`,
    );
  }
  return loadOrtWeb().InferenceSession.create(readFileSync(path), {
    executionProviders: ['webgpu'],
    graphOptimizationLevel: 'all',
    // The prompt form leaves shape arithmetic on the CPU, which onnxruntime warns about.
    logSeverityLevel: 3,
    enableGraphCapture: capture,
    preferredOutputLocation: 'gpu-buffer',
    externalData: [{ path: `${basename(path)}.data`, data: readFileSync(`${path}.data`) }],
  });
}

/** Made after a first session, which creates onnxruntime-web's GPU device. */
async function sharedBindings(graph: StaticGraph): Promise<SharedBindings> {
  const t = graph.config.text;
  const gpu = await GpuTensors.of(loadOrtWeb());
  const tensors: Record<string, Ort.Tensor> = {};
  const buffers: GpuBuffer[] = [];
  const cacheDims = [1, t.numKvHeads, graph.capacity, t.headDim];
  for (let l = 0; l < t.numLayers; l++) {
    for (const [past, present] of [
      [DECODER_INPUTS.pastKey(l), DECODER_OUTPUTS.presentKey(l)],
      [DECODER_INPUTS.pastValue(l), DECODER_OUTPUTS.presentValue(l)],
    ]) {
      const cache = gpu.create(graph.cacheType, cacheDims);
      tensors[past] = tensors[present] = cache.tensor;
      buffers.push(cache.buffer);
    }
  }
  // Nothing cached yet: text positions from 0 on.
  const table = new MropeTables(t).cacheTable([[], [], []], 0, graph.capacity);
  for (const [name, values] of [
    [DECODER_INPUTS.cos, table.cos],
    [DECODER_INPUTS.sin, table.sin],
  ] as const) {
    const { tensor, buffer } = gpu.create('float32', [graph.capacity, t.headDim / 2]);
    gpu.write(buffer, values);
    tensors[name] = tensor;
    buffers.push(buffer);
  }
  if (graph.capture) await keepRegistered(loadOrtWeb(), buffers);
  return { gpu, tensors };
}

/** Splits the shared tensors into a session's feeds and fetches by its own names. */
function bind(session: Ort.InferenceSession, shared: SharedBindings) {
  const pick = (names: readonly string[]) =>
    Object.fromEntries(
      names.filter((name) => name in shared.tensors).map((name) => [name, shared.tensors[name]]),
    );
  return { feeds: pick(session.inputNames), fetches: pick(session.outputNames) };
}

/** A static-run session over the shared cache, with its own input and output buffers. */
async function openStatic(
  graph: StaticGraph,
  session: Ort.InferenceSession,
  shared: SharedBindings,
): Promise<StaticSession> {
  const t = graph.config.text;
  const { gpu } = shared;
  const { rows } = graph;
  const kept = keptLogitBlocks(t.vocabSize);
  const input = {
    ids: gpu.create('int64', [1, rows]),
    seqlens: gpu.create('int32', [1]),
    total: gpu.create('int32', []),
  };
  const output = {
    logits: gpu.create('float32', [rows, t.vocabSize]),
    blocks: gpu.create('int64', [rows, kept, 1]),
    blockLogits: gpu.create('float32', [rows, kept, LOGIT_BLOCK]),
    chosen: gpu.create('int64', [rows, 1]),
  };
  const { feeds, fetches } = bind(session, shared);
  Object.assign(feeds, {
    [DECODER_INPUTS.ids]: input.ids.tensor,
    [DECODER_INPUTS.seqlens]: input.seqlens.tensor,
    [DECODER_INPUTS.total]: input.total.tensor,
  });
  Object.assign(fetches, {
    [DECODER_OUTPUTS.logits]: output.logits.tensor,
    [DECODER_OUTPUTS.bestBlocks]: output.blocks.tensor,
    [DECODER_OUTPUTS.bestBlockLogits]: output.blockLogits.tensor,
    [DECODER_OUTPUTS.nextToken]: output.chosen.tensor,
  });
  if (graph.capture) {
    const own = [...Object.values(input), ...Object.values(output)].map((io) => io.buffer);
    await keepRegistered(loadOrtWeb(), own);
  }
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
      return greedy(new BigInt64Array(blockIds), new Float32Array(values), t.vocabSize);
    },
    async readChosenSoon() {
      return Number(new BigInt64Array(await gpu.readSoon(output.chosen.buffer, 8))[0]);
    },
  };
}

/** Each row's greedy token from its best-logit blocks. */
function greedy(blockIds: BigInt64Array, values: Float32Array, vocabSize: number): number[] {
  const kept = keptLogitBlocks(vocabSize);
  return topLogitsFromBlocks(blockIds, values, kept, 1, vocabSize).map((best) => best.ids[0]);
}

/**
 * A text prompt (positions 0, 1, ...) in one run of the prompt form (decoder-graph.ts
 * `inPlaceCache` without `staticRows`), written into the shared cache; the greedy next token.
 */
async function runPromptForm(
  session: Ort.InferenceSession,
  shared: SharedBindings,
  config: Qwen3VLConfig,
  prompt: number[],
): Promise<number> {
  const ort = loadOrtWeb();
  const t = config.text;
  const n = prompt.length;
  const taps = Math.max(1, config.vision.deepstackVisualIndexes.length);
  const one = new ort.Tensor('int64', BigInt64Array.of(1n), [1]);
  const { feeds, fetches } = bind(session, shared);
  const result = await session.run(
    {
      ...feeds,
      [DECODER_INPUTS.ids]: new ort.Tensor('int64', BigInt64Array.from(prompt, BigInt), [1, n]),
      [DECODER_INPUTS.visual]: new ort.Tensor('float32', new Float32Array(n * t.hiddenSize), [
        1,
        n,
        t.hiddenSize,
      ]),
      [DECODER_INPUTS.deepstack]: new ort.Tensor(
        'float32',
        new Float32Array(taps * n * t.hiddenSize),
        [taps, 1, n, t.hiddenSize],
      ),
      [DECODER_INPUTS.seqlens]: new ort.Tensor('int32', Int32Array.of(n - 1), [1]),
      [DECODER_INPUTS.total]: new ort.Tensor('int32', Int32Array.of(n), []),
      [DECODER_INPUTS.numLogits]: one,
      [DECODER_INPUTS.returnedLogits]: one,
    },
    {
      ...fetches,
      [DECODER_OUTPUTS.logits]: null,
      [DECODER_OUTPUTS.bestBlocks]: null,
      [DECODER_OUTPUTS.bestBlockLogits]: null,
    },
  );
  const blocks = (await result[DECODER_OUTPUTS.bestBlocks].getData(true)) as BigInt64Array;
  const values = (await result[DECODER_OUTPUTS.bestBlockLogits].getData(true)) as Float32Array;
  result[DECODER_OUTPUTS.logits].dispose();
  return greedy(blocks, values, t.vocabSize)[0];
}

/**
 * Greedy decoding of a text prompt (positions 0, 1, ...) with a one-row graph: the prompt token
 * by token through it, or in one run through `promptForm` (the prompt form's graph, a second
 * session bound to the same cache). `pipelined`: each step takes the previous step's chosen
 * token on the GPU (a buffer copy) and is queued before that token reaches the host, which
 * reads tokens one step behind, so the host's wait leaves the critical path (a step's time is
 * then the gap between two tokens). Otherwise each step waits for its best logits, as the
 * engine's steps do.
 */
export async function decodeStaticStep(
  graph: StaticGraph,
  prompt: number[],
  steps: number,
  options: { pipelined?: boolean; promptForm?: string } = {},
): Promise<Decoded> {
  const sessions = [await createSession(graph.path, graph.capture)];
  const shared = await sharedBindings(graph);
  try {
    const session = await openStatic(graph, sessions[0], shared);
    let started = performance.now();
    let tokens: number[];
    if (options.promptForm) {
      sessions.push(await createSession(options.promptForm, false));
      // Timed the second time, as the engine's prompt is: the first compiles the shaders.
      await runPromptForm(sessions[1], shared, graph.config, prompt);
      started = performance.now();
      tokens = [await runPromptForm(sessions[1], shared, graph.config, prompt)];
    } else {
      for (const [position, id] of prompt.entries()) await session.run([id], position);
      tokens = await session.readBest();
    }
    const promptMs = performance.now() - started;
    const stepMs: number[] = [];
    if (!options.pipelined) {
      for (let i = 0; i < steps; i++) {
        started = performance.now();
        await session.run([tokens[i]], prompt.length + i);
        tokens.push(...(await session.readBest()));
        stepMs.push(performance.now() - started);
      }
      return { tokens, promptMs, stepMs };
    }
    // The first step takes the prompt's token from the host: the prompt form chose none on the GPU.
    let pending: Promise<number> | undefined;
    let last = performance.now();
    const arrived = (token: number) => {
      tokens.push(token);
      const now = performance.now();
      stepMs.push(now - last);
      last = now;
    };
    for (let i = 0; i < steps; i++) {
      await session.run(i === 0 ? [tokens[0]] : 'chosen', prompt.length + i);
      const reading = session.readChosenSoon();
      if (pending) arrived(await pending);
      pending = reading;
    }
    if (pending) arrived(await pending);
    return { tokens, promptMs, stepMs };
  } finally {
    for (const session of sessions) await session.release();
    shared.gpu.destroy();
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
  const created = await createSession(graph.path, graph.capture);
  const shared = await sharedBindings(graph);
  try {
    const session = await openStatic(graph, created, shared);
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
    await created.release();
    shared.gpu.destroy();
  }
}
