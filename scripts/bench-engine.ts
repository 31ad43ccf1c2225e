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
 *   takes effect between prompt chunks, --prefill-chunk tokens long; default the device's);
 * - restarts: the screenshot again with its vision outputs read from disk, and the follow-up
 *   going on from the conversation the stopped engine saved (CPU), against without it.
 * The scenarios are scripts/bench/engine-scenarios.ts, the figures engine-report.ts.
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
import { basename, join, resolve } from 'node:path';
import { readModelConfig, type Qwen3VLConfig } from '../server/engine/checkpoint/config';
import { loadChatCheckpoint } from '../server/engine/chat/chat-checkpoint';
import type { LoadModelOptions } from '../server/engine/contracts';
import { loadModel } from '../server/engine/runtime/load-model';
import { parseArgs, type Options } from './bench/engine-options';
import { report } from './bench/engine-report';
import { runScenarios } from './bench/engine-scenarios';
import { measureInt4Ceiling, type KernelCeiling } from './bench/int4-kernel-ceiling';
import { measureBandwidth } from './bench/memory-bandwidth';
import { randomCheckpoint } from './bench/random-checkpoint';
import { timeDecoder } from './bench/timed-decoder';

const ROOT = resolve(process.env.BENCH_ROOT ?? join(__dirname, '..'));
const BENCH_DIR = resolve(process.env.BENCH_CACHE_DIR ?? join(ROOT, '.cache', 'bench-engine'));
const MODEL_DIR = join(BENCH_DIR, 'qwen3vl-2b-random');
const ONNX_CACHE = join(BENCH_DIR, 'onnx');

function captureOption(options: Options): LoadModelOptions['graphCapture'] {
  if (options.graphCapture === undefined) return undefined;
  return { capacity: options.graphCapture, verifyRows: options.graphCaptureVerify };
}

/** The checkpoint measured: --model, or the 2B-sized random one (generated on first use). */
function benchModel(options: Options, log: (s: string) => void): [string, Qwen3VLConfig] {
  if (options.modelDir) return [options.modelDir, readModelConfig(options.modelDir)];
  return [MODEL_DIR, randomCheckpoint(ROOT, MODEL_DIR, log)];
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
  const timing = timeDecoder(model.decoder);
  const run = () =>
    runScenarios(model, timing, loadChatCheckpoint(modelDir), basename(modelDir), options);
  // GPU providers compile their shaders on the first run of each shape (prefill, step, each
  // verification length): one unmeasured pass first, as the transformers baseline is measured
  // warm (compiled). The CPU has nothing to warm up.
  if (model.device !== 'cpu') await run();
  const scenarios = await run();
  await model.dispose();
  report({
    options,
    device: model.device,
    config,
    modelDir,
    bandwidth,
    readBandwidth,
    kernel,
    scenarios,
  });
}

main().catch((error) => {
  console.error(
    error instanceof Error ? (process.env.BENCH_DEBUG ? error.stack : error.message) : error,
  );
  process.exit(1);
});
