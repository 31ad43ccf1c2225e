/**
 * npm run bench:engine [-- --device cpu|webgpu|cuda] [--image WxH] [--precision int4|fp16|fp32]
 *                         [--tokens N] [--json] [--model DIR]
 *                         [--draft-tokens N] [--run-cost linear:X] [--prefill-decoder on|off]
 *                         [--graph-capture N] [--graph-capture-verify R] [--prefill-chunk N]
 *
 * Builds a Qwen3-VL-2B-sized model from random weights (the real 2B layout, generated once and
 * cached under .cache/bench-engine, or $BENCH_CACHE_DIR), with the real Qwen tokenizer and
 * template from the test fixture, then measures through the chat engine:
 * - a screenshot prompt (a generated PNG of --image size): preprocessing, vision, prefill, time
 *   to first token, plain decode tokens/s, peak RSS and, on the CPU, the decode roofline
 *   (bytes a step reads, weights and KV cache, over a memory bandwidth measured in the same
 *   run: memcpy's, the ceiling, and that of reads alone); then decode
 *   tokens/s of the same prompt with speculation, as users get it by default;
 * - a refinement (the previous answer in the prompt plus a new instruction): time to first
 *   token reusing the KV cache vs cold, decode tokens/s plain vs prompt-lookup speculation,
 *   drafts accepted per decoder run, and whether both decoded the same tokens; and a follow-up
 *   refinement read ahead while typed (max tokens 0, as the extension sends it): its first token
 *   once asked for; and the screenshot prompt read ahead as the extension does once an image is
 *   chosen and again once an instruction is typed: Generate's first token after that;
 * - Stops at five points of a cold prefill: how long until the engine is free again (a stop
 *   takes effect between prompt chunks, --prefill-chunk tokens long; default the device's).
 * Random weights: draft acceptance is this model's, not a trained model's.
 * --draft-tokens and --run-cost set the draft planner (most drafts at once; a run's cost growing
 * by X steps per token instead of the device's measured curve), to compare planners in one call:
 * `--draft-tokens 8 --run-cost linear:0.25` is the planner before the device curves.
 * --prefill-decoder off runs prompts on the int4 decoder, without the CPU int4 build's 8-bit
 * prefill decoder (on: always load it; default: where memory allows).
 * --graph-capture N (WebGPU) runs the text decoder with graph capture on onnxruntime-web, its
 * cache fixed at N positions (load-model.ts `graphCapture`); --graph-capture-verify R adds a
 * captured verification run of R tokens (speculative runs of up to R tokens, padded).
 * --prefill-chunk N runs prompts in chunks of N tokens (load-model.ts `prefillChunk`), to weigh
 * a Stop's wait against the first token's time.
 * --model DIR measures a checkpoint directory instead (e.g. the tiny test fixture, to check the
 * benchmark itself on a new device quickly, or a real Qwen3-VL download).
 *
 * The checkpoint generation and ONNX build run in a child process so the peak RSS reported is
 * that of inference alone. $BENCH_ROOT overrides the repository root (for a bundled copy).
 */
import { spawnSync } from 'node:child_process';
import {
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  renameSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join, resolve } from 'node:path';
import {
  parseModelConfig,
  readModelConfig,
  type Qwen3VLConfig,
} from '../server/engine/checkpoint/config';
import { writeSafetensors } from '../server/engine/checkpoint/safetensors-writer';
import { loadChatCheckpoint } from '../server/engine/chat/chat-checkpoint';
import type {
  ChatMessage,
  DeviceRequest,
  GenerationResult,
  LoadModelOptions,
  Precision,
  TextDecoder,
} from '../server/engine/contracts';
import { createChatEngine } from '../server/engine/generation/chat-engine';
import { DEFAULT_SEQUENCE_DISK_BYTES } from '../server/engine/generation/sequence-disk-store';
import { DEFAULT_PROMPT_LOOKUP } from '../server/engine/generation/prompt-lookup';
import { runCostThrough } from '../server/engine/generation/run-cost';
import { kvRowBytes } from '../server/engine/runtime/kv-cache';
import { kvCacheType, loadModel } from '../server/engine/runtime/load-model';
import { measureInt4Ceiling, type KernelCeiling } from './bench/int4-kernel-ceiling';
import { measureBandwidth } from './bench/memory-bandwidth';
import { screenshot } from './bench/screenshot';

interface Options {
  device: DeviceRequest;
  image: [number, number];
  precision: Precision;
  tokens: number;
  json: boolean;
  prepare: boolean;
  /** A checkpoint to measure instead of the generated 2B-sized random one. */
  modelDir?: string;
  /** Draft planner overrides (default: the engine's). */
  draftTokens?: number;
  runCostPerToken?: number;
  /** CPU int4: load the 8-bit prefill decoder (default: where memory allows). */
  prefillDecoder?: boolean;
  /** WebGPU: the graph-capture decoder with a cache of this many positions. */
  graphCapture?: number;
  graphCaptureVerify?: number;
  /** The longest prompt run (default the device's). */
  prefillChunk?: number;
}

const ROOT = resolve(process.env.BENCH_ROOT ?? join(__dirname, '..'));
const BENCH_DIR = resolve(process.env.BENCH_CACHE_DIR ?? join(ROOT, '.cache', 'bench-engine'));
const MODEL_DIR = join(BENCH_DIR, 'qwen3vl-2b-random');
const ONNX_CACHE = join(BENCH_DIR, 'onnx');
const HOST_FILES = [
  'tokenizer.json',
  'tokenizer_config.json',
  'chat_template.jinja',
  'preprocessor_config.json',
  'processor_config.json',
  'generation_config.json',
];

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
    else if (arg === '--model') options.modelDir = resolve(value());
    else if (arg === '--draft-tokens') options.draftTokens = Number(value());
    else if (arg === '--graph-capture') options.graphCapture = Number(value());
    else if (arg === '--graph-capture-verify') options.graphCaptureVerify = Number(value());
    else if (arg === '--prefill-chunk') options.prefillChunk = Number(value());
    else if (arg === '--prefill-decoder') {
      const v = value();
      if (v !== 'on' && v !== 'off') throw new Error('--prefill-decoder takes on or off');
      options.prefillDecoder = v === 'on';
    } else if (arg === '--run-cost') {
      const m = /^linear:(\d*\.?\d+)$/.exec(value());
      if (!m)
        throw new Error('--run-cost takes linear:X, X steps per extra token, e.g. linear:0.25');
      options.runCostPerToken = Number(m[1]);
    } else if (arg === '--image') {
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

function captureOption(options: Options): LoadModelOptions['graphCapture'] {
  if (options.graphCapture === undefined) return undefined;
  return { capacity: options.graphCapture, verifyRows: options.graphCaptureVerify };
}

/** The checkpoint measured: --model, or the 2B-sized random one (generated on first use). */
function benchModel(options: Options, log: (s: string) => void): [string, Qwen3VLConfig] {
  if (options.modelDir) return [options.modelDir, readModelConfig(options.modelDir)];
  const config = ensureCheckpoint(log);
  ensureHostFiles();
  return [MODEL_DIR, config];
}

async function prepare(options: Options): Promise<void> {
  const [modelDir] = benchModel(options, (s) => console.error(s));
  const started = Date.now();
  const model = await loadModel(modelDir, {
    cacheDir: ONNX_CACHE,
    precision: options.precision,
    // The same request as the measured run: GPU requests build int4 with fp16 activations.
    device: options.device,
    graphCapture: captureOption(options),
    onProgress: (p) =>
      p.stage === 'build' &&
      p.done === 0 &&
      console.error(`building ${options.precision} ${p.item} (${p.total} tensors) ...`),
  });
  await model.dispose();
  console.error(`model ready in ${((Date.now() - started) / 1000).toFixed(0)} s`);
}

/** The tokenizer, template and processor settings (the real Qwen ones, from the test fixture). */
function ensureHostFiles(): void {
  const from = join(ROOT, 'test', 'fixtures', 'qwen3vl-tiny', 'model');
  for (const file of HOST_FILES) {
    if (!existsSync(join(MODEL_DIR, file))) copyFileSync(join(from, file), join(MODEL_DIR, file));
  }
}

async function main(): Promise<void> {
  const options = parseArgs(process.argv.slice(2));
  if (options.prepare) return prepare(options);
  const log = (s: string) => !options.json && console.log(s);

  const child = spawnSync(
    process.execPath,
    [
      ...process.execArgv,
      process.argv[1],
      '--prepare',
      '--precision',
      options.precision,
      '--device',
      options.device,
      ...(options.modelDir ? ['--model', options.modelDir] : []),
      ...(options.graphCapture ? ['--graph-capture', String(options.graphCapture)] : []),
      ...(options.graphCaptureVerify
        ? ['--graph-capture-verify', String(options.graphCaptureVerify)]
        : []),
    ],
    { stdio: ['ignore', 'inherit', 'inherit'] },
  );
  if (child.status !== 0) throw new Error('preparing the benchmark model failed');

  const [modelDir, config] = benchModel(options, log);
  // The best of three: on a shared machine a single run can read far below what the memory
  // does (one memcpy run once gave a roofline under the speed decode reached).
  let bandwidth: number | undefined;
  let readBandwidth: number | undefined;
  if (options.device === 'cpu') {
    for (let i = 0; i < 3; i++) {
      bandwidth = Math.max(bandwidth ?? 0, await measureBandwidth('copy'));
      readBandwidth = Math.max(readBandwidth ?? 0, await measureBandwidth('read'));
    }
  }
  // The int4 kernel alone, before the model loads (both at once would need twice the memory).
  let kernel: KernelCeiling | undefined;
  if ((options.device === 'cpu' || options.device === 'webgpu') && options.precision === 'int4') {
    kernel = await measureInt4Ceiling(config.text, join(BENCH_DIR, 'int4-kernel'), options.device);
  }
  const model = await loadModel(modelDir, {
    cacheDir: ONNX_CACHE,
    precision: options.precision,
    device: options.device,
    prefillDecoder: options.prefillDecoder,
    prefillChunk: options.prefillChunk,
    graphCapture: captureOption(options),
    onWarning: (message) => console.error(message),
  });
  const checkpoint = loadChatCheckpoint(modelDir);
  // Every plain decode step (one token, whole row or best logits) is timed: on a shared
  // machine the fastest step shows what the hardware does when nothing else runs, the mean
  // what this run got.
  const stepMs: number[] = [];
  const decoder = model.decoder;
  const timed = async <T>(tokens: number, run: () => Promise<T>): Promise<T> => {
    const started = performance.now();
    const result = await run();
    if (tokens === 1) stepMs.push(performance.now() - started);
    return result;
  };
  /** Told when a prefill starts (the Stop measurement times its stop from there). */
  let onPrefill: (() => void) | undefined;
  const timedDecoder: TextDecoder = {
    prefill: (input) => {
      onPrefill?.();
      return decoder.prefill(input);
    },
    step: (token, position) => timed(1, () => decoder.step(token, position)),
    extend: (tokens, position) => decoder.extend(tokens, position),
    extendTop: (tokens, position) =>
      timed(tokens.length, () => decoder.extendTop(tokens, position)),
    // Pipelined where the decoder can (graph capture): a step's time is then the gap between
    // two tokens.
    stepGreedy:
      decoder.stepGreedy &&
      ((token, position) => timed(1, () => decoder.stepGreedy!(token, position))),
    get topLogitsPerRow() {
      return decoder.topLogitsPerRow;
    },
    truncate: (length) => decoder.truncate(length),
    reset: () => decoder.reset(),
    get pastLength() {
      return decoder.pastLength;
    },
    get cachedIds() {
      return decoder.cachedIds;
    },
    saveSequence: () => decoder.saveSequence?.(),
    restoreSequence: decoder.restoreSequence && ((saved) => decoder.restoreSequence!(saved)),
  };
  // Engines share the model: disposing one (which saves its conversation) keeps the model.
  const timedModel = { ...model, decoder: timedDecoder, dispose: async () => {} };
  // A fresh engine has empty image caches; plain decoding is asked for per request, so the
  // refinement runs in the engine that saw the first prompt, as in the server. Its vision
  // outputs go to disk only where `diskDir` says (a temporary build folder), measured apart,
  // and so does its conversation when it stops, where `keepSequence` says.
  const freshEngine = (diskDir?: string, keepSequence = false) =>
    createChatEngine(diskDir ? { ...timedModel, buildDir: diskDir } : timedModel, checkpoint, {
      modelName: basename(modelDir),
      imageDiskCacheBytes: diskDir ? undefined : 0,
      sequenceDiskBytes: keepSequence ? DEFAULT_SEQUENCE_DISK_BYTES : 0,
      speculation: {
        ...DEFAULT_PROMPT_LOOKUP,
        draftTokens: options.draftTokens ?? DEFAULT_PROMPT_LOOKUP.draftTokens,
      },
      runCost:
        options.runCostPerToken === undefined
          ? undefined
          : runCostThrough([
              [1, 1],
              [2, 1 + options.runCostPerToken],
            ]),
    });
  const image = await screenshot(options.image);
  const task = 'Generate a single HTML file with inline CSS that reproduces this UI.';
  const ask = (text: string): ChatMessage[] => [
    {
      role: 'user',
      content: [
        { type: 'image', image },
        { type: 'text', text },
      ],
    },
  ];
  const first = ask(task);
  const greedy = { greedy: true };
  const tokS = (r: GenerationResult) =>
    r.tokenIds.length > 1 && r.timingsMs.decodeMs > 0
      ? (r.tokenIds.length - 1) / (r.timingsMs.decodeMs / 1000)
      : 0;

  /** The measured generations; stepMs collects the plain decode steps of the first. */
  const measure = async () => {
    model.decoder.reset();
    stepMs.length = 0;
    // 1. A cold screenshot prompt, plain decoding (the figures bench:engine always printed).
    // Its vision outputs are written to disk, for step 8.
    const diskDir = mkdtempSync(join(tmpdir(), 'd2c-bench-build-'));
    const engine = freshEngine(diskDir);
    const cold = await engine.generate({
      messages: first,
      maxNewTokens: options.tokens,
      sampling: greedy,
      speculation: false,
    });
    const coldSteps = stepMs.slice();
    // 2. A refinement of it: the previous answer is in the prompt; KV reuse + speculation.
    const refinement: ChatMessage[] = [
      ...first,
      { role: 'assistant', content: cold.text },
      { role: 'user', content: 'Make the header blue and keep everything else as it is.' },
    ];
    const refined = await engine.generate({
      messages: refinement,
      maxNewTokens: options.tokens,
      sampling: greedy,
    });
    // 3. The same refinement decoded plainly (its prompt is still cached: only decode differs).
    const refinedPlain = await engine.generate({
      messages: refinement,
      maxNewTokens: options.tokens,
      sampling: greedy,
      speculation: false,
    });
    // 3b. A follow-up refinement read ahead while it was typed (the extension sends it with max
    // tokens 0 once typing pauses): asked for, it runs only its last token.
    const followUp: ChatMessage[] = [
      ...refinement,
      { role: 'assistant', content: refinedPlain.text },
      { role: 'user', content: 'Make the footer grey too.' },
    ];
    await engine.generate({ messages: followUp, maxNewTokens: 0, sampling: greedy });
    const readAhead = await engine.generate({
      messages: followUp,
      maxNewTokens: 1,
      sampling: greedy,
    });
    // 4. The screenshot prompt again, with speculation as users get it by default: on a first
    // answer drafts pass less often, and must not make decoding slower than plain.
    const coldSpec = await engine.generate({
      messages: first,
      maxNewTokens: options.tokens,
      sampling: greedy,
    });
    // 5. The refinement from nothing: empty KV cache, image not cached (a fresh engine).
    model.decoder.reset();
    const refinedCold = await freshEngine().generate({
      messages: refinement,
      maxNewTokens: 1,
      sampling: greedy,
    });
    // 6. Stops at 10, 30, 50, 70 and 90% of the screenshot prompt's prefill, from nothing (the
    // vision tower runs once, then its output is cached): how long after a Stop the engine is
    // free. The wait counts from when the Stop was due: onnxruntime-node runs a session on the
    // main thread, so the timer (like a server's closed socket) is only seen between runs.
    const stopEngine = freshEngine();
    const stopWaits: number[] = [];
    for (const fraction of [0.1, 0.3, 0.5, 0.7, 0.9]) {
      model.decoder.reset();
      const stop = new AbortController();
      const delay = cold.timingsMs.prefillMs * fraction;
      let stopDue = Infinity;
      let stopTimer: NodeJS.Timeout | undefined;
      onPrefill = () => {
        stopDue = performance.now() + delay;
        stopTimer = setTimeout(() => stop.abort(), delay);
      };
      await stopEngine.generate(
        { messages: first, maxNewTokens: 1, sampling: greedy },
        { signal: stop.signal },
      );
      onPrefill = undefined;
      clearTimeout(stopTimer);
      // None: the prefill ended before the stop was due (it ran faster than the first time).
      if (performance.now() > stopDue) stopWaits.push(performance.now() - stopDue);
    }
    // 7. A screenshot read ahead as it is chosen, then again once an instruction is typed (the
    // extension sends Generate's prompt with max tokens 0 at once and after typing pauses):
    // Generate then runs only its last token. From nothing: a fresh engine, an empty cache.
    model.decoder.reset();
    const pasteEngine = freshEngine();
    const typed = ask(`${task}\n\nAlso: use a dark theme.`);
    await pasteEngine.generate({ messages: first, maxNewTokens: 0, sampling: greedy });
    const instructionRead = await pasteEngine.generate({
      messages: typed,
      maxNewTokens: 0,
      sampling: greedy,
    });
    const pasted = await pasteEngine.generate({
      messages: typed,
      maxNewTokens: 1,
      sampling: greedy,
    });
    // 8. After a restart (the model unloaded while idle, VS Code reopened): a fresh engine
    // whose build folder holds the screenshot's vision outputs, written in step 1.
    model.decoder.reset();
    const written = join(diskDir, 'images');
    const isWritten = () =>
      existsSync(written) && readdirSync(written).some((f) => f.endsWith('.vision'));
    for (let waited = 0; !isWritten(); waited += 50) {
      if (waited > 30_000) throw new Error(`step 1 wrote no vision outputs to ${written}`);
      await new Promise((done) => setTimeout(done, 50));
    }
    const restarted = await freshEngine(diskDir).generate({
      messages: first,
      maxNewTokens: 1,
      sampling: greedy,
    });
    // 9. The follow-up of step 3b after a restart: from nothing but the image's vision outputs
    // on disk (the server before it kept its conversation), then from the conversation the
    // server it replaces saved when it stopped.
    model.decoder.reset();
    const unsaved = freshEngine(diskDir, true);
    const followUpCold = await unsaved.generate({
      messages: followUp,
      maxNewTokens: 1,
      sampling: greedy,
    });
    const saveStarted = performance.now();
    await unsaved.dispose();
    const sequenceSaveMs = performance.now() - saveStarted;
    // Only the CPU build's cache lives on the host (a GPU build's restarted conversation is
    // prefilled again, fast there): no file, and the second engine prefills in full.
    const saved = join(diskDir, `sequence-${model.device}.kv`);
    const sequenceBytes = existsSync(saved) ? statSync(saved).size : undefined;
    model.decoder.reset();
    const followUpRestored = await freshEngine(diskDir, true).generate({
      messages: followUp,
      maxNewTokens: 1,
      sampling: greedy,
    });
    rmSync(diskDir, { recursive: true, force: true });
    return {
      restarted,
      followUpCold,
      followUpRestored,
      sequenceSaveMs,
      sequenceBytes,
      cold,
      coldSteps,
      coldSpec,
      refined,
      refinedPlain,
      refinedCold,
      readAhead,
      stopWaits,
      instructionRead,
      pasted,
    };
  };
  // GPU providers compile their shaders on the first run of each shape (prefill, step, each
  // verification length): one unmeasured pass first, as the transformers baseline is measured
  // warm (compiled). The CPU has nothing to warm up.
  if (model.device !== 'cpu') await measure();
  const {
    restarted,
    followUpCold,
    followUpRestored,
    sequenceSaveMs,
    sequenceBytes,
    cold,
    coldSteps,
    coldSpec,
    refined,
    refinedPlain,
    refinedCold,
    readAhead,
    stopWaits,
    instructionRead,
    pasted,
  } = await measure();
  const bestStepMs = Math.min(...coldSteps);
  const meanStepMs = coldSteps.reduce((a, b) => a + b, 0) / coldSteps.length;
  const device = model.device;
  await model.dispose();

  const t = cold.timingsMs;
  const decodeTokS = tokS(cold);
  // The timed steps read the KV cache at prompt + 0 .. tokens - 2 cached rows: on average this.
  const meanCachedRows = cold.promptTokenIds.length + (cold.tokenIds.length - 2) / 2;
  const bytes = decodeBytesPerToken(config, options.precision, meanCachedRows);
  const bytesPerToken = bytes.weights + bytes.kvCache;
  const rooflineTokS = bandwidth ? bandwidth / bytesPerToken : undefined;
  const readRooflineTokS = readBandwidth ? readBandwidth / bytesPerToken : undefined;
  const peakRssMb = process.resourceUsage().maxRSS / 1024;
  const stats = refined.stats!;
  const coldSpecStats = coldSpec.stats!;
  const result = {
    device,
    precision: options.precision,
    draft_planner:
      `most ${options.draftTokens ?? DEFAULT_PROMPT_LOOKUP.draftTokens}, ` +
      (options.runCostPerToken === undefined
        ? `${device}'s run cost`
        : `linear:${options.runCostPerToken}`),
    prefill_decoder:
      options.prefillDecoder === undefined ? 'where memory allows' : options.prefillDecoder,
    graph_capture: options.graphCapture ?? null,
    graph_capture_verify_rows: options.graphCaptureVerify ?? null,
    prompt_tokens: cold.promptTokenIds.length,
    ttft_ms: Math.round(t.firstTokenMs),
    decode_tok_s: round(decodeTokS, 2),
    decode_tokens: cold.tokenIds.length,
    roofline_tok_s: rooflineTokS === undefined ? null : round(rooflineTokS, 2),
    roofline_ratio: rooflineTokS === undefined ? null : round(decodeTokS / rooflineTokS, 3),
    peak_rss_mb: Math.round(peakRssMb),
    decode_best_step_tok_s: round(1000 / bestStepMs, 2),
    // The decoder's own time per step; the rest of a token is sampling, detokenizing, streaming.
    decode_step_mean_ms: round(meanStepMs, 1),
    roofline_ratio_best_step:
      rooflineTokS === undefined ? null : round(1000 / bestStepMs / rooflineTokS, 3),
    bandwidth_gb_s: bandwidth === undefined ? null : round(bandwidth / 1e9, 1),
    read_bandwidth_gb_s: readBandwidth === undefined ? null : round(readBandwidth / 1e9, 1),
    read_roofline_ratio:
      readRooflineTokS === undefined ? null : round(decodeTokS / readRooflineTokS, 3),
    weight_bytes_per_token: Math.round(bytes.weights),
    kv_cache_bytes_per_token: Math.round(bytes.kvCache),
    kernel_tok_s: kernel ? round(1000 / kernel.allThreadsMs, 2) : null,
    kernel_gb_s: kernel ? round(kernel.bytes / kernel.allThreadsMs / 1e6, 2) : null,
    kernel_gb_s_one_thread: kernel?.oneThreadMs
      ? round(kernel.bytes / kernel.oneThreadMs / 1e6, 2)
      : null,
    kernel_ratio: kernel ? round((decodeTokS * kernel.allThreadsMs) / 1000, 3) : null,
    image: options.image.join('x'),
    preprocess_ms: round(t.preprocessMs, 1),
    vision_ms: round(t.visionMs, 1),
    prefill_ms: round(t.prefillMs, 1),
    generate_read_ahead_ttft_ms: round(pasted.timingsMs.firstTokenMs, 1),
    generate_read_ahead_prefilled: pasted.stats!.prefilledTokens,
    instruction_read_ahead_ms: round(instructionRead.timingsMs.totalMs, 1),
    instruction_read_ahead_prefilled: instructionRead.stats!.prefilledTokens,
    decode_spec_tok_s: round(tokS(coldSpec), 2),
    decode_spec_runs: coldSpecStats.decoderRuns,
    decode_spec_accepted_drafts: `${coldSpecStats.acceptedDrafts}/${coldSpecStats.draftTokens}`,
    decode_spec_same_tokens: sameTokens(coldSpec.tokenIds, cold.tokenIds),
    restart_ttft_ms: round(restarted.timingsMs.firstTokenMs, 1),
    restart_vision_ms: round(restarted.timingsMs.visionMs, 1),
    restart_cached_images: restarted.stats!.cachedImages,
    restart_follow_up_prompt_tokens: followUpCold.promptTokenIds.length,
    restart_follow_up_cold_ttft_ms: round(followUpCold.timingsMs.firstTokenMs, 1),
    restart_follow_up_ttft_ms: round(followUpRestored.timingsMs.firstTokenMs, 1),
    restart_follow_up_reused_tokens: followUpRestored.stats!.reusedTokens,
    restart_follow_up_same_token: sameTokens(followUpRestored.tokenIds, followUpCold.tokenIds),
    sequence_save_ms: round(sequenceSaveMs, 1),
    sequence_mb: sequenceBytes === undefined ? null : round(sequenceBytes / 1e6, 1),
    refine_prompt_tokens: refined.promptTokenIds.length,
    refine_reused_tokens: stats.reusedTokens,
    refine_ttft_ms: round(refined.timingsMs.firstTokenMs, 1),
    refine_cold_ttft_ms: round(refinedCold.timingsMs.firstTokenMs, 1),
    refine_read_ahead_ttft_ms: round(readAhead.timingsMs.firstTokenMs, 1),
    refine_read_ahead_prefilled: readAhead.stats!.prefilledTokens,
    refine_plain_tok_s: round(tokS(refinedPlain), 2),
    prefill_chunk: options.prefillChunk ?? 'default',
    stop_wait_mean_ms: stopWaits.length
      ? round(stopWaits.reduce((a, b) => a + b, 0) / stopWaits.length, 1)
      : null,
    stop_wait_max_ms: stopWaits.length ? round(Math.max(...stopWaits), 1) : null,
    stops_measured: stopWaits.length,
    refine_spec_tok_s: round(tokS(refined), 2),
    spec_decoder_runs: stats.decoderRuns,
    spec_draft_tokens: stats.draftTokens,
    spec_accepted_drafts: stats.acceptedDrafts,
    spec_accepted_per_run: round(
      stats.decoderRuns ? stats.acceptedDrafts / stats.decoderRuns : 0,
      2,
    ),
    spec_same_tokens: sameTokens(refined.tokenIds, refinedPlain.tokenIds),
  };
  if (options.json) {
    console.log(JSON.stringify(result));
    return;
  }
  log(
    (options.modelDir
      ? `${basename(modelDir)}, ${options.precision} on ${device}`
      : `Qwen3-VL-2B-sized model (random weights), ${options.precision} on ${device}`) +
      (options.graphCapture ? `, graph capture (cache of ${options.graphCapture})` : ''),
  );
  log(`  image ${result.image} -> grid ${cold.imageGridThw[0].join('x')}`);
  log(`  prompt tokens        ${result.prompt_tokens}`);
  log(`  preprocess           ${result.preprocess_ms} ms`);
  log(`  vision               ${result.vision_ms} ms`);
  log(`  prefill              ${result.prefill_ms} ms`);
  log(`  time to first token  ${result.ttft_ms} ms`);
  log(
    `    read ahead         ${result.generate_read_ahead_ttft_ms} ms once the image and then its instruction were read ahead (the instruction took ${result.instruction_read_ahead_ms} ms for ${result.instruction_read_ahead_prefilled} tokens)`,
  );
  log(
    `    after a restart    ${result.restart_ttft_ms} ms with the image's vision outputs read from disk in ${result.restart_vision_ms} ms`,
  );
  log(
    `    follow-up, restart ${result.restart_follow_up_ttft_ms} ms going on from the conversation saved at the stop (${result.sequence_mb} MB, saved in ${result.sequence_save_ms} ms), ${result.restart_follow_up_cold_ttft_ms} ms without it (${result.restart_follow_up_prompt_tokens} tokens)`,
  );
  log(`  decode               ${result.decode_tok_s} tokens/s over ${cold.tokenIds.length} tokens`);
  log(
    `  fastest decode step  ${bestStepMs.toFixed(0)} ms (${result.decode_best_step_tok_s} tokens/s); mean ${result.decode_step_mean_ms} ms, ${(1000 / decodeTokS).toFixed(1)} ms per token with the loop`,
  );
  log(
    `  with speculation     ${result.decode_spec_tok_s} tokens/s (${result.decode_spec_accepted_drafts} drafts accepted in ${result.decode_spec_runs} runs; same tokens: ${result.decode_spec_same_tokens})`,
  );
  log(`  peak RSS             ${result.peak_rss_mb} MB`);
  if (result.stop_wait_mean_ms !== null) {
    log(
      `  Stop during prefill  the engine was free ${result.stop_wait_mean_ms} ms later on average, at most ${result.stop_wait_max_ms} (${result.stops_measured} stops; prompt chunks: ${result.prefill_chunk})`,
    );
  }
  if (bandwidth && rooflineTokS) {
    log(
      `  memory bandwidth     ${result.bandwidth_gb_s} GB/s (memcpy, read + write, all cores); reads alone ${result.read_bandwidth_gb_s} GB/s`,
    );
    log(
      `  read per token       ${(bytesPerToken / 1e9).toFixed(3)} GB (weights ${(bytes.weights / 1e9).toFixed(3)}, KV cache ${(bytes.kvCache / 1e9).toFixed(3)} at ${Math.round(meanCachedRows)} cached rows)`,
    );
    log(
      `  roofline             ${result.roofline_tok_s} tokens/s; achieved ${(result.roofline_ratio! * 100).toFixed(1)}% (fastest step ${(result.roofline_ratio_best_step! * 100).toFixed(1)}%; ${(result.read_roofline_ratio! * 100).toFixed(1)}% of what reads alone allow)`,
    );
  }
  if (kernel) {
    log(
      `  int4 kernel alone    ${result.kernel_tok_s} tokens/s (${kernel.allThreadsMs.toFixed(1)} ms for the step's MatMulNBits: ${result.kernel_gb_s} GB/s${kernel.oneThreadMs ? `; one thread ${result.kernel_gb_s_one_thread} GB/s` : ''}); decode achieves ${(result.kernel_ratio! * 100).toFixed(1)}% of it`,
    );
  }
  log(`Refinement (previous answer in the prompt, ${result.refine_prompt_tokens} tokens)`);
  log(
    `  first token          ${result.refine_ttft_ms} ms reusing ${result.refine_reused_tokens} cached tokens; ${result.refine_cold_ttft_ms} ms cold`,
  );
  log(
    `  decode               ${result.refine_plain_tok_s} tokens/s plain, ${result.refine_spec_tok_s} with speculation`,
  );
  log(
    `  speculation          ${stats.acceptedDrafts}/${stats.draftTokens} drafts accepted in ${stats.decoderRuns} runs (${result.spec_accepted_per_run} per run); same tokens as plain: ${result.spec_same_tokens}`,
  );
  log('  (random weights: draft acceptance reflects this model, not a trained one)');
}

function sameTokens(a: number[], b: number[]): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

/**
 * Bytes a decode step reads: every decoder linear layer and the LM head in the build's format
 * (int4: packed nibbles, an fp32 scale and a zero-point nibble per 32 weights; with tied fp32/fp16
 * weights the LM head is the embedding; the embedding gather reads one row, negligible), and the
 * KV cache of `cachedRows` positions (keys and values of every layer, in the CPU build's type).
 */
function decodeBytesPerToken(
  config: Qwen3VLConfig,
  precision: Precision,
  cachedRows: number,
): { weights: number; kvCache: number } {
  const t = config.text;
  const q = t.numHeads * t.headDim;
  const kv = t.numKvHeads * t.headDim;
  const d = t.hiddenSize;
  const linear = t.numLayers * (d * q + 2 * d * kv + q * d + 3 * d * t.intermediateSize);
  const head = t.vocabSize * d;
  const bytesPerWeight =
    precision === 'int4' ? 0.5 + 4 / 32 + 0.5 / 32 : precision === 'fp16' ? 2 : 4;
  return {
    weights: (linear + head) * bytesPerWeight,
    kvCache: t.numLayers * 2 * cachedRows * kvRowBytes(t, kvCacheType(precision, 'cpu')),
  };
}

function round(x: number, digits: number): number {
  return Number(x.toFixed(digits));
}

main().catch((error) => {
  console.error(
    error instanceof Error ? (process.env.BENCH_DEBUG ? error.stack : error.message) : error,
  );
  process.exit(1);
});
