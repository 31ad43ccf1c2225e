/**
 * The decoder's in-place forms (decoder-graph.ts `inPlaceCache`) on onnxruntime-web
 * (ort-web-in-node.ts), the static runs optionally with WebGPU graph capture: their inputs and
 * outputs live in GPU buffers of their own that the host writes or reads, past and present are
 * one buffer per layer and K/V (GroupQueryAttention appends in place), shared by every session
 * of the decoder, so every run has the same bindings and a captured run can be replayed. Greedy
 * decoding (the prompt token by token through the step, or in one run of the prompt form), and
 * the time of static runs of several tokens (verification runs).
 */
import type * as Ort from 'onnxruntime-web';
import type { Qwen3VLConfig } from '../../server/engine/checkpoint/config';
import {
  InPlaceBindings,
  StaticRun,
  createInPlaceSession,
  runPromptForm,
} from '../../server/engine/runtime/in-place-sessions';
import { MropeTables } from '../../server/engine/runtime/mrope';

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

/** Made after a first session; the rotary table holds text positions 0, 1, ... */
async function sharedBindings(graph: StaticGraph): Promise<InPlaceBindings> {
  const t = graph.config.text;
  const bindings = await InPlaceBindings.create(t, graph.capacity, graph.cacheType, graph.capture);
  const table = new MropeTables(t).cacheTable([[], [], []], 0, graph.capacity);
  bindings.writeTable(0, table.cos, table.sin);
  return bindings;
}

/** A static-run session over the shared cache. */
function openStatic(
  graph: StaticGraph,
  session: Ort.InferenceSession,
  shared: InPlaceBindings,
): Promise<StaticRun> {
  return StaticRun.open(session, shared, graph.config.text, graph.rows, graph.capture);
}

/** Each row's greedy token. */
async function readBest(run: StaticRun): Promise<number[]> {
  return (await run.readTop(1)).map((best) => best.ids[0]);
}

/**
 * A text prompt (positions 0, 1, ...) in one run of the prompt form, written into the shared
 * cache; the greedy next token.
 */
async function promptFormToken(
  session: Ort.InferenceSession,
  shared: InPlaceBindings,
  config: Qwen3VLConfig,
  prompt: number[],
): Promise<number> {
  const scores = await runPromptForm(session, shared, config, {
    ids: prompt,
    past: 0,
    numLogits: 1,
    returnedLogits: 1,
  });
  return scores.top(1)[0].ids[0];
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
  const sessions = [await createInPlaceSession(graph.path, { capture: graph.capture })];
  const shared = await sharedBindings(graph);
  try {
    const session = await openStatic(graph, sessions[0], shared);
    let started = performance.now();
    let tokens: number[];
    if (options.promptForm) {
      sessions.push(await createInPlaceSession(options.promptForm, { capture: false }));
      // Timed the second time, as the engine's prompt is: the first compiles the shaders.
      await promptFormToken(sessions[1], shared, graph.config, prompt);
      started = performance.now();
      tokens = [await promptFormToken(sessions[1], shared, graph.config, prompt)];
    } else {
      for (const [position, id] of prompt.entries()) await session.run([id], position);
      tokens = await readBest(session);
    }
    const promptMs = performance.now() - started;
    const stepMs: number[] = [];
    if (!options.pipelined) {
      for (let i = 0; i < steps; i++) {
        started = performance.now();
        await session.run([tokens[i]], prompt.length + i);
        tokens.push(...(await readBest(session)));
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
    shared.destroy();
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
  const created = await createInPlaceSession(graph.path, { capture: graph.capture });
  const shared = await sharedBindings(graph);
  try {
    const session = await openStatic(graph, created, shared);
    const tokens = Array.from({ length: graph.rows }, (_, i) => 1000 + i);
    const times: number[] = [];
    for (let i = 0; i < runs + 3; i++) {
      const started = performance.now();
      await session.run(tokens, position);
      await readBest(session);
      if (i >= 3) times.push(performance.now() - started);
    }
    return times;
  } finally {
    await created.release();
    shared.destroy();
  }
}
