/**
 * Does WebGPU graph capture make the decoder's steps faster?
 *   tsx scripts/bench/capture-decode.ts --model DIR --cache DIR [--precision int4|fp16]
 *     [--prompt 128] [--steps 64] [--capacity 1024] [--modes engine,web,capture,pipelined]
 *     [--verify-rows 4,17] [--json]
 *
 * On an H200 a 2B int4 step took 10-12 ms of which the GPU was busy 4.7: the rest is the host
 * recording and submitting ~250 kernels (docs/bench/2026-11-27-h200). Graph capture records a
 * run once and replays it; onnxruntime-node 1.30 cannot turn it on, onnxruntime-web can
 * (ort-web-in-node.ts). Each mode runs a text prompt of --prompt tokens and then --steps greedy
 * steps, in one process:
 *   engine   the engine's decoder on onnxruntime-node, as a generation runs it (the prompt in
 *            one run; each step feeds the cache back from GPU memory and reads its best logits)
 *   web      onnxruntime-web: the prompt in one run of the decoder's prompt form, then the
 *            static decode step (decoder-graph.ts `inPlaceCache`), both sessions bound to one
 *            cache (a GPU buffer per layer and K/V, past and present alike, appended in
 *            place), the step's inputs and outputs in GPU buffers of its own
 *   capture  the same with graph capture: the first run records, every later run replays
 *   pipelined  capture, and each step takes the last one's greedy token (ArgMax in the graph)
 *            on the GPU and is queued before that token reaches the host, which reads tokens
 *            one step behind (a step's time: the gap between two tokens)
 * and prints each mode's prompt time (its second run: the first compiles shaders), step time
 * (median, best), tokens/s and how many of its tokens agree with the first mode's (the web
 * modes run the same kernels; onnxruntime-node's may round differently, e.g. its
 * subgroup-matrix MatMulNBits for the prompt, and part from them at a near tie of random
 * weights). --verify-rows then
 * times captured static runs of that many tokens at the cache position the steps reached (a
 * speculative verification run's shape, each waiting for its rows' best logits), in captured
 * steps: the run-cost curve speculation would have under capture. --cache is the engine's
 * build cache (bench-engine's by default); the in-place graphs are built beside its builds on
 * first use. Web modes need onnxruntime-web and webgpu (dev dependencies; NODE_PATH in the GPU script).
 */
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync } from 'node:fs';
import { basename, join, resolve } from 'node:path';
import { readModelConfig, type Qwen3VLConfig } from '../../server/engine/checkpoint/config';
import { SafetensorsCheckpoint } from '../../server/engine/checkpoint/safetensors';
import { checkpointSource } from '../../server/engine/checkpoint/weights';
import type { Precision } from '../../server/engine/contracts';
import { argmax } from '../../server/engine/generation/sampling';
import { buildInPlaceDecoder } from '../../server/engine/onnx/build-graphs';
import { loadModel } from '../../server/engine/runtime/load-model';
import {
  type Decoded,
  type StaticGraph,
  decodeStaticStep,
  timeStaticRuns,
} from './static-step-web';

type Mode = 'engine' | 'web' | 'capture' | 'pipelined';

interface Options {
  model: string;
  cache: string;
  precision: Precision;
  prompt: number;
  steps: number;
  capacity: number;
  modes: Mode[];
  verifyRows: number[];
  json: boolean;
}

function parseArgs(argv: string[]): Options {
  const options: Options = {
    model: '',
    cache: resolve('.cache/bench-engine/onnx'),
    precision: 'int4',
    prompt: 128,
    steps: 64,
    capacity: 1024,
    modes: ['engine', 'web', 'capture', 'pipelined'],
    verifyRows: [],
    json: false,
  };
  for (let i = 0; i < argv.length; i++) {
    const flag = argv[i];
    if (flag === '--json') {
      options.json = true;
      continue;
    }
    const value = argv[++i];
    if (value === undefined) throw new Error(`${flag} needs a value`);
    if (flag === '--model') options.model = resolve(value);
    else if (flag === '--cache') options.cache = resolve(value);
    else if (flag === '--precision') options.precision = value as Precision;
    else if (flag === '--prompt') options.prompt = Number(value);
    else if (flag === '--steps') options.steps = Number(value);
    else if (flag === '--capacity') options.capacity = Number(value);
    else if (flag === '--modes') options.modes = value.split(',') as Mode[];
    else if (flag === '--verify-rows') options.verifyRows = value.split(',').map(Number);
    else throw new Error(`unknown option ${flag}`);
  }
  if (!options.model) throw new Error('--model DIR is required');
  if (options.prompt + options.steps + Math.max(0, ...options.verifyRows) > options.capacity) {
    throw new Error(
      `--prompt + --steps + the longest --verify-rows must fit in --capacity (${options.capacity})`,
    );
  }
  return options;
}

/** The prompt: text tokens spread over the vocabulary, as profile-decode uses. */
function promptIds(length: number): number[] {
  return Array.from({ length }, (_, i) => 1000 + ((i * 7919) % 50000));
}

async function decodeWithEngine(options: Options): Promise<Decoded> {
  const model = await loadModel(options.model, {
    cacheDir: options.cache,
    device: 'webgpu',
    precision: options.precision,
  });
  const ids = promptIds(options.prompt);
  const positions = ids.map((_, i) => i);
  const prefill = () =>
    model.decoder.prefill({ inputIds: ids, positionIds: [positions, positions, positions] });
  await prefill(); // compiles the shaders: the prompt is timed the second time
  let started = performance.now();
  const logits = await prefill();
  const tokens = [argmax(logits)];
  const promptMs = performance.now() - started;
  const stepMs: number[] = [];
  for (let i = 0; i < options.steps; i++) {
    started = performance.now();
    const [best] = await model.decoder.extendTop([tokens[i]], options.prompt + i);
    stepMs.push(performance.now() - started);
    tokens.push(best.ids[0]);
  }
  await model.dispose();
  return { tokens, promptMs, stepMs };
}

/**
 * The decoder with its cache in place for this checkpoint, precision and capacity: a static run
 * of `staticRows` tokens, or the prompt form. Built on first use beside the engine's builds
 * (build-cache.ts leaves other names alone), named by a hash of the graph (a dry run) so a
 * changed graph is built anew.
 */
function inPlaceGraph(options: Options, config: Qwen3VLConfig, staticRows?: number): string {
  const source = checkpointSource(SafetensorsCheckpoint.open(options.model));
  const build = (path?: string) =>
    buildInPlaceDecoder(config, source, options.precision, options.capacity, { path, staticRows });
  const hash = createHash('sha256').update(build()).digest('hex').slice(0, 16);
  const dir = join(options.cache, `capture-step-${basename(options.model)}`);
  const form = staticRows === undefined ? 'prompt' : `${staticRows}-rows`;
  const path = join(dir, `${options.precision}-${options.capacity}-${form}-${hash}.onnx`);
  if (!existsSync(path)) {
    mkdirSync(dir, { recursive: true });
    build(path);
  }
  return path;
}

function staticGraph(options: Options, rows: number, capture: boolean): StaticGraph {
  const config = readModelConfig(options.model);
  return {
    path: inPlaceGraph(options, config, rows),
    config,
    capacity: options.capacity,
    rows,
    cacheType: options.precision === 'fp32' ? 'float32' : 'float16',
    capture,
  };
}

async function decodeWithWeb(
  options: Options,
  mode: 'web' | 'capture' | 'pipelined',
): Promise<Decoded> {
  const graph = staticGraph(options, 1, mode !== 'web');
  return decodeStaticStep(graph, promptIds(options.prompt), options.steps, {
    pipelined: mode === 'pipelined',
    promptForm: inPlaceGraph(options, graph.config),
  });
}

function leadingAgreement(a: number[], b: number[]): number {
  let n = 0;
  while (n < a.length && n < b.length && a[n] === b[n]) n++;
  return n;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

function summary(options: Options, mode: Mode, decoded: Decoded, first: Decoded) {
  // The first steps compile shaders (and, with capture, record): the median leaves them out.
  const steady = decoded.stepMs.slice(Math.min(4, decoded.stepMs.length - 1));
  return {
    probe: 'capture_decode',
    mode,
    precision: options.precision,
    prompt_tokens: options.prompt,
    steps: options.steps,
    capacity: options.capacity,
    prompt_ms: +decoded.promptMs.toFixed(1),
    step_ms: +median(steady).toFixed(3),
    best_step_ms: +Math.min(...steady).toFixed(3),
    tokens_per_s: +(1000 / median(steady)).toFixed(1),
    tokens_agreeing_with_first_mode: leadingAgreement(decoded.tokens, first.tokens),
    tokens: decoded.tokens.length,
  };
}

async function main(): Promise<void> {
  const options = parseArgs(process.argv.slice(2));
  // Each mode's line prints as soon as it ends: a run cut off by a time limit keeps them.
  const rows: ReturnType<typeof summary>[] = [];
  let first: Decoded | undefined;
  for (const mode of options.modes) {
    const decoded =
      mode === 'engine' ? await decodeWithEngine(options) : await decodeWithWeb(options, mode);
    first ??= decoded;
    const row = summary(options, mode, decoded, first);
    rows.push(row);
    const engine = rows.find((r) => r.mode === 'engine');
    const ratio =
      engine && row !== engine
        ? { step_vs_engine: +(row.step_ms / engine.step_ms).toFixed(3) }
        : {};
    if (options.json) console.log(JSON.stringify({ ...row, ...ratio }));
    else {
      console.log(
        `${row.mode.padEnd(8)} step ${row.step_ms} ms (best ${row.best_step_ms}), ${row.tokens_per_s} tokens/s, prompt ${row.prompt_ms} ms; ${row.tokens_agreeing_with_first_mode}/${row.tokens} tokens as ${options.modes[0]}${'step_vs_engine' in ratio ? `; ${ratio.step_vs_engine}x the engine's step` : ''}`,
      );
    }
  }
  const capturedStepMs = rows.find((row) => row.mode === 'capture')?.step_ms;
  for (const size of options.verifyRows) {
    const graph = staticGraph(options, size, true);
    const times = await timeStaticRuns(graph, options.prompt + options.steps, 24);
    const ms = median(times);
    const row = {
      probe: 'capture_verify_run',
      precision: options.precision,
      run_tokens: size,
      cache_tokens: options.prompt + options.steps,
      run_ms: +ms.toFixed(3),
      best_run_ms: +Math.min(...times).toFixed(3),
      ...(capturedStepMs && { in_captured_steps: +(ms / capturedStepMs).toFixed(3) }),
    };
    console.log(
      options.json
        ? JSON.stringify(row)
        : `verify   ${size} tokens: ${row.run_ms} ms (best ${row.best_run_ms})${capturedStepMs ? `, ${row.in_captured_steps} captured steps` : ''}`,
    );
  }
  process.exit(0);
}

main().catch((error) => {
  console.error(error instanceof Error ? error.message : error);
  process.exit(1);
});
