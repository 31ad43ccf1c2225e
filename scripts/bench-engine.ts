/**
 * npm run bench:engine [-- --device cpu|webgpu|cuda] [--image WxH] [--precision int4|fp16|fp32]
 *                         [--tokens N] [--json]
 *
 * Builds a Qwen3-VL-2B-sized model from random weights (the real 2B layout, generated once and
 * cached under .cache/bench-engine), then measures one image prompt: time to first token (vision
 * + prefill), decode tokens/s, peak RSS, and the decode roofline of this machine: weight bytes
 * read per token divided by a memory bandwidth measured in the same run.
 *
 * The checkpoint generation and ONNX build run in a child process so the peak RSS reported is
 * that of inference alone.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, renameSync, statSync, writeFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { join, resolve } from 'node:path';
import { Worker } from 'node:worker_threads';
import { parseModelConfig, type Qwen3VLConfig } from '../server/engine/checkpoint/config';
import { writeSafetensors } from '../server/engine/checkpoint/safetensors-writer';
import type { DeviceRequest, Precision } from '../server/engine/contracts';
import { loadModel } from '../server/engine/runtime/load-model';

interface Options {
  device: DeviceRequest;
  image: [number, number];
  precision: Precision;
  tokens: number;
  json: boolean;
  prepare: boolean;
}

const ROOT = resolve(__dirname, '..');
const BENCH_DIR = join(ROOT, '.cache', 'bench-engine');
const MODEL_DIR = join(BENCH_DIR, 'qwen3vl-2b-random');
const ONNX_CACHE = join(BENCH_DIR, 'onnx');

function parseArgs(argv: string[]): Options {
  const options: Options = {
    device: 'cpu',
    image: [512, 512],
    precision: 'int4',
    tokens: 32,
    json: false,
    prepare: false,
  };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    const value = () => {
      const v = argv[++i];
      if (v === undefined) throw new Error(`${arg} needs a value`);
      return v;
    };
    if (arg === '--device') options.device = value() as DeviceRequest;
    else if (arg === '--precision') options.precision = value() as Precision;
    else if (arg === '--tokens') options.tokens = Number(value());
    else if (arg === '--json') options.json = true;
    else if (arg === '--prepare') options.prepare = true;
    else if (arg === '--image') {
      const m = /^(\d+)x(\d+)$/.exec(value());
      if (!m) throw new Error('--image takes WIDTHxHEIGHT, e.g. 1280x800');
      options.image = [Number(m[1]), Number(m[2])];
    } else throw new Error(`unknown argument ${arg}`);
  }
  return options;
}

/** The 2B layout with random weights: uniform(±1/sqrt(fan_in)) for matrices, ~1 for norms. */
function ensureCheckpoint(log: (s: string) => void): Qwen3VLConfig {
  const layout = JSON.parse(
    readFileSync(join(ROOT, 'test', 'fixtures', 'qwen3vl_2b_layout.json'), 'utf8'),
  ) as { config: Record<string, unknown>; tensors: Record<string, number[]> };
  const rawConfig = { ...layout.config, model_type: 'qwen3_vl' };
  const config = parseModelConfig(rawConfig, 'qwen3vl_2b_layout.json');
  const file = join(MODEL_DIR, 'model.safetensors');
  if (existsSync(file) && existsSync(join(MODEL_DIR, 'config.json'))) return config;
  mkdirSync(MODEL_DIR, { recursive: true });
  const started = Date.now();
  log('generating a random Qwen3-VL-2B-sized checkpoint (bf16, once) ...');
  let seed = 0x9e3779b9;
  const random = () => {
    // xorshift32: fast and deterministic; quality is irrelevant for speed measurements.
    seed ^= seed << 13;
    seed ^= seed >>> 17;
    seed ^= seed << 5;
    return (seed >>> 0) / 2 ** 32;
  };
  const specs = Object.entries(layout.tensors).map(([name, shape]) => ({ name, shape }));
  writeSafetensors(`${file}.partial`, specs, 'BF16', ({ name, shape }, out) => {
    const isNorm = /norm|layernorm/.test(name) && name.endsWith('.weight');
    if (isNorm) for (let i = 0; i < out.length; i++) out[i] = 0.9 + 0.2 * random();
    else {
      const scale = 1 / Math.sqrt(shape.length > 1 ? shape.slice(1).reduce((a, b) => a * b) : 64);
      for (let i = 0; i < out.length; i++) out[i] = (2 * random() - 1) * scale;
    }
  });
  renameSync(`${file}.partial`, file);
  writeFileSync(join(MODEL_DIR, 'config.json'), JSON.stringify(rawConfig, null, 2));
  log(
    `  ${(statSync(file).size / 1e9).toFixed(2)} GB in ${((Date.now() - started) / 1000).toFixed(0)} s`,
  );
  return config;
}

/** Multi-threaded memcpy: bytes read + written per second (what decode's weight streaming is bound by). */
async function measureBandwidth(): Promise<number> {
  const threads = Math.max(1, availableParallelism());
  const bytes = 256 * 1024 * 1024;
  const rounds = 4;
  const code = `
    const { parentPort, workerData } = require('node:worker_threads');
    const src = Buffer.alloc(workerData.bytes, 1), dst = Buffer.alloc(workerData.bytes);
    src.copy(dst); // touch pages before timing
    parentPort.postMessage('ready');
    parentPort.once('message', () => {
      const t = process.hrtime.bigint();
      for (let r = 0; r < workerData.rounds; r++) src.copy(dst);
      parentPort.postMessage(Number(process.hrtime.bigint() - t) / 1e9);
    });`;
  const workers = Array.from(
    { length: threads },
    () => new Worker(code, { eval: true, workerData: { bytes, rounds } }),
  );
  await Promise.all(workers.map((w) => new Promise((r) => w.once('message', r))));
  const start = process.hrtime.bigint();
  await Promise.all(
    workers.map((w) => {
      const done = new Promise((r) => w.once('message', r));
      w.postMessage('go');
      return done;
    }),
  );
  const seconds = Number(process.hrtime.bigint() - start) / 1e9;
  await Promise.all(workers.map((w) => w.terminate()));
  return (2 * bytes * rounds * threads) / seconds;
}

/** Single-image prompt ids and MRoPE positions, laid out as the chat template would. */
function imagePrompt(config: Qwen3VLConfig, grid: [number, number, number]) {
  const merge = config.vision.spatialMergeSize;
  const [, gh, gw] = grid;
  const mh = gh / merge;
  const mw = gw / merge;
  const before = [151644, 872, 198, config.visionStartTokenId];
  const after = [config.visionEndTokenId, 31115, 419, 2168, 13, 151645, 198, 151644, 77091, 198];
  const ids = [...before, ...Array(mh * mw).fill(config.imageTokenId), ...after];
  const t: number[] = [];
  const h: number[] = [];
  const w: number[] = [];
  before.forEach((_, i) => (t.push(i), h.push(i), w.push(i)));
  const start = before.length;
  for (let r = 0; r < mh; r++) {
    for (let c = 0; c < mw; c++) {
      t.push(start);
      h.push(start + r);
      w.push(start + c);
    }
  }
  const next = start + Math.max(mh, mw);
  after.forEach((_, i) => (t.push(next + i), h.push(next + i), w.push(next + i)));
  const ropeDelta = next + after.length - ids.length;
  return { ids, positions: [t, h, w] as [number[], number[], number[]], ropeDelta };
}

/** Grid of patches for an image resized to multiples of 32 (smart_resize without bounds). */
function gridFor([width, height]: [number, number]): [number, number, number] {
  const round32 = (x: number) => Math.max(32, Math.round(x / 32) * 32);
  return [1, round32(height) / 16, round32(width) / 16];
}

async function prepare(options: Options): Promise<void> {
  ensureCheckpoint((s) => console.error(s));
  const started = Date.now();
  const model = await loadModel(MODEL_DIR, {
    cacheDir: ONNX_CACHE,
    precision: options.precision,
    device: 'cpu',
    onProgress: (p) =>
      p.stage === 'build' &&
      p.done === 0 &&
      console.error(`building ${options.precision} ${p.item} (${p.total} tensors) ...`),
  });
  await model.dispose();
  console.error(`model ready in ${((Date.now() - started) / 1000).toFixed(0)} s`);
}

async function main(): Promise<void> {
  const options = parseArgs(process.argv.slice(2));
  if (options.prepare) return prepare(options);
  const log = (s: string) => !options.json && console.log(s);

  const child = spawnSync(
    process.execPath,
    [...process.execArgv, process.argv[1], '--prepare', '--precision', options.precision],
    { stdio: ['ignore', 'inherit', 'inherit'] },
  );
  if (child.status !== 0) throw new Error('preparing the benchmark model failed');

  const config = ensureCheckpoint(log);
  const bandwidth = await measureBandwidth();
  const model = await loadModel(MODEL_DIR, {
    cacheDir: ONNX_CACHE,
    precision: options.precision,
    device: options.device,
  });
  const grid = gridFor(options.image);
  const patches = grid[0] * grid[1] * grid[2];
  const patchIn =
    config.vision.inChannels * config.vision.temporalPatchSize * config.vision.patchSize ** 2;
  const pixels = new Float32Array(patches * patchIn);
  for (let i = 0; i < pixels.length; i++) pixels[i] = ((i * 2654435761) % 2001) / 1000 - 1;
  const prompt = imagePrompt(config, grid);

  const t0 = performance.now();
  const visual = await model.vision.encode(pixels, grid);
  const t1 = performance.now();
  let logits = await model.decoder.prefill({
    inputIds: prompt.ids,
    positionIds: prompt.positions,
    visual,
  });
  let token = argmax(logits);
  const t2 = performance.now();
  for (let i = 0; i < options.tokens; i++) {
    logits = await model.decoder.step(token, model.decoder.pastLength + prompt.ropeDelta);
    token = argmax(logits);
  }
  const t3 = performance.now();
  const device = model.device;
  await model.dispose();

  const decodeTokS = options.tokens / ((t3 - t2) / 1000);
  const bytesPerToken = decodeBytesPerToken(config, options.precision);
  const rooflineTokS = bandwidth / bytesPerToken;
  const peakRssMb = process.resourceUsage().maxRSS / 1024;
  const result = {
    device,
    precision: options.precision,
    prompt_tokens: prompt.ids.length,
    ttft_ms: Math.round(t2 - t0),
    decode_tok_s: round(decodeTokS, 2),
    roofline_tok_s: round(rooflineTokS, 2),
    roofline_ratio: round(decodeTokS / rooflineTokS, 3),
    peak_rss_mb: Math.round(peakRssMb),
  };
  if (options.json) {
    console.log(JSON.stringify(result));
    return;
  }
  log(`Qwen3-VL-2B-sized model (random weights), ${options.precision} on ${device}`);
  log(
    `  image ${options.image.join('x')} -> grid ${grid.join('x')}, ${visual.tokens} visual tokens`,
  );
  log(`  prompt tokens        ${result.prompt_tokens}`);
  log(`  vision               ${(t1 - t0).toFixed(0)} ms`);
  log(`  prefill              ${(t2 - t1).toFixed(0)} ms`);
  log(`  time to first token  ${result.ttft_ms} ms`);
  log(`  decode               ${result.decode_tok_s} tokens/s over ${options.tokens} tokens`);
  log(`  peak RSS             ${result.peak_rss_mb} MB`);
  log(
    `  memory bandwidth     ${(bandwidth / 1e9).toFixed(1)} GB/s (memcpy, read + write, all cores)`,
  );
  log(`  weights per token    ${(bytesPerToken / 1e9).toFixed(3)} GB`);
  log(
    `  roofline             ${result.roofline_tok_s} tokens/s; achieved ${(result.roofline_ratio * 100).toFixed(1)}%`,
  );
}

/**
 * Bytes of weights one decode step streams: every decoder linear layer and norm, plus the LM
 * head. int4 reads packed nibbles + a scale + a zero-point nibble per 32 weights; the embedding
 * gather reads one row (negligible). With tied fp32/fp16 weights the LM head is the embedding.
 */
function decodeBytesPerToken(config: Qwen3VLConfig, precision: Precision): number {
  const t = config.text;
  const q = t.numHeads * t.headDim;
  const kv = t.numKvHeads * t.headDim;
  const d = t.hiddenSize;
  const linear = t.numLayers * (d * q + 2 * d * kv + q * d + 3 * d * t.intermediateSize);
  const head = t.vocabSize * d;
  const bytesPerWeight =
    precision === 'int4' ? 0.5 + 4 / 32 + 0.5 / 32 : precision === 'fp16' ? 2 : 4;
  return (linear + head) * bytesPerWeight;
}

function argmax(values: Float32Array): number {
  let best = 0;
  for (let i = 1; i < values.length; i++) if (values[i] > values[best]) best = i;
  return best;
}

function round(x: number, digits: number): number {
  return Number(x.toFixed(digits));
}

main().catch((error) => {
  console.error(error instanceof Error ? error.message : error);
  process.exit(1);
});
