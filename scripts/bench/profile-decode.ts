/**
 * Where a decode step's time goes: tsx scripts/bench/profile-decode.ts --model DIR --cache DIR
 *   [--device webgpu|cpu] [--precision int4|fp16] [--lengths 128,1024,2048] [--out DIR]
 *   [--webgpu key=value,key=value]   (WebGPU provider options, e.g. validationMode=disabled)
 *   [--profile-run-tokens N]         (profile verification runs of N tokens instead of steps)
 *   [--run-sizes 1,2,3,4,5,9,17,33]  (verification run sizes to time)
 *   [--target cpu|gpu]               (the graphs; default the device's, gpu on the CPU compares)
 *
 * 1. The decoder's step time (median of 24) after text prefills of each cache length: a step
 *    that grows with the cache spends it in attention or in moving the cache, not in weights.
 * 2. Verification runs (speculation): the time of one decoder run of 1, 2, 3, 4, 5, 9, 17 and
 *    33 tokens at the middle cache length (the cache is truncated back after each), returning
 *    every logit (plus the host's argmax over the rows) or each row's best logits only
 *    (extendTop, what greedy and top-k sampling use). Each run's time in one-token runs
 *    (`in_steps`) is the cost curve the draft planner needs (generation/run-cost.ts). Each run's
 *    logits are also compared with one-token runs' at the same positions
 *    (`max_logit_diff_vs_steps`): a kernel for more rows may round differently, not compute
 *    something else (on lavapipe, runs of 32 rows or more do, see docs/bench/2026-11-27-h200).
 * 3. One onnxruntime profile of the decoder (prefill of the middle length, then 16 steps),
 *    written under --out; on WebGPU it holds each kernel's GPU time. scripts/gpu/summarize_profile.py
 *    turns it into a table.
 * Uses an already built model (bench-engine --prepare builds one).
 */
import { mkdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type {
  DeviceRequest,
  GraphTarget,
  LoadedModel,
  Precision,
} from '../../server/engine/contracts';
import { argmax } from '../../server/engine/generation/sampling';
import { loadModel } from '../../server/engine/runtime/load-model';

interface Options {
  model: string;
  cache: string;
  device: DeviceRequest;
  precision: Precision;
  lengths: number[];
  out: string;
  webgpu?: Record<string, string>;
  /** Above 1: the profile holds verification runs of this many tokens, not steps. */
  profileRunTokens: number;
  runSizes: number[];
  target?: GraphTarget;
}

function parseArgs(argv: string[]): Options {
  const options: Partial<Options> = {
    device: 'webgpu',
    precision: 'int4',
    lengths: [128, 1024, 2048],
    out: resolve('profile-decode'),
    profileRunTokens: 1,
    runSizes: [1, 2, 3, 4, 5, 9, 17, 33],
  };
  for (let i = 0; i < argv.length; i += 2) {
    const [flag, value] = [argv[i], argv[i + 1]];
    if (value === undefined) throw new Error(`${flag} needs a value`);
    if (flag === '--model') options.model = resolve(value);
    else if (flag === '--cache') options.cache = resolve(value);
    else if (flag === '--device') options.device = value as DeviceRequest;
    else if (flag === '--precision') options.precision = value as Precision;
    else if (flag === '--lengths') options.lengths = value.split(',').map(Number);
    else if (flag === '--out') options.out = resolve(value);
    else if (flag === '--profile-run-tokens') options.profileRunTokens = Number(value);
    else if (flag === '--run-sizes') options.runSizes = value.split(',').map(Number);
    else if (flag === '--target') options.target = value as GraphTarget;
    else if (flag === '--webgpu') {
      options.webgpu = Object.fromEntries(value.split(',').map((entry) => entry.split('=', 2)));
    } else throw new Error(`unknown argument ${flag}`);
  }
  if (!options.model || !options.cache) throw new Error('--model and --cache are required');
  return options as Options;
}

/** A text-only prefill of `length` tokens (ids from the ordinary vocabulary, positions 0..n-1). */
async function prefillText(model: LoadedModel, length: number): Promise<void> {
  const ids = Array.from({ length }, (_, i) => 1000 + ((i * 7919) % 50000));
  const positions = Array.from({ length }, (_, i) => i);
  model.decoder.reset();
  await model.decoder.prefill({ inputIds: ids, positionIds: [positions, positions, positions] });
}

async function stepTimes(model: LoadedModel, length: number, steps: number): Promise<number[]> {
  await prefillText(model, length);
  const times: number[] = [];
  for (let i = 0; i < steps; i++) {
    const started = performance.now();
    await model.decoder.step(1000 + i, length + i);
    times.push(performance.now() - started);
  }
  return times;
}

/** `runs` verification runs of `size` tokens (best logits only), each truncated back. */
async function verifyRunTimes(model: LoadedModel, length: number, size: number, runs: number) {
  await prefillText(model, length);
  const ids = Array.from({ length: size }, (_, i) => 1000 + i);
  for (let i = 0; i < runs; i++) {
    await model.decoder.extendTop(ids, length);
    model.decoder.truncate(length);
  }
}

interface RunSizeTimes {
  size: number;
  /** extend(): every logit back, then the host's argmax over each row. */
  fullMs: number;
  argmaxMs: number;
  /** extendTop(): each row's best logits only (what greedy and top-k sampling use). */
  topMs: number;
  /**
   * Largest difference of the run's logits from those one-token runs give at the same
   * positions: kernels for more rows round differently, but should not compute differently.
   */
  maxDiffVsSteps: number;
}

/** The logits of one-token runs over `ids` from position `length` on. */
async function steppedLogits(model: LoadedModel, length: number, ids: number[]) {
  const rows: Float32Array[] = [];
  for (const [k, id] of ids.entries()) rows.push((await model.decoder.extend([id], length + k))[0]);
  model.decoder.truncate(length);
  return rows;
}

function maxAbsDifference(a: Float32Array, b: Float32Array): number {
  let max = 0;
  for (let i = 0; i < a.length; i++) max = Math.max(max, Math.abs(a[i] - b[i]));
  return max;
}

/** Median times of decoder runs of each size after a `length`-token prefill (truncated back after each). */
async function runSizeTimes(
  model: LoadedModel,
  length: number,
  sizes: number[],
): Promise<RunSizeTimes[]> {
  await prefillText(model, length);
  const longest = Array.from({ length: Math.max(...sizes) }, (_, i) => 1000 + i);
  const stepped = await steppedLogits(model, length, longest);
  const rows: RunSizeTimes[] = [];
  for (const size of sizes) {
    const ids = longest.slice(0, size);
    const [full, picks, top]: number[][] = [[], [], []];
    let maxDiffVsSteps = 0;
    for (let i = 0; i < 12; i++) {
      let started = performance.now();
      const logits = await model.decoder.extend(ids, length);
      full.push(performance.now() - started);
      if (i === 0) {
        logits.forEach((row, k) => {
          maxDiffVsSteps = Math.max(maxDiffVsSteps, maxAbsDifference(row, stepped[k]));
        });
      }
      started = performance.now();
      for (const row of logits) argmax(row);
      picks.push(performance.now() - started);
      model.decoder.truncate(length);
      started = performance.now();
      await model.decoder.extendTop(ids, length);
      top.push(performance.now() - started);
      model.decoder.truncate(length);
    }
    rows.push({
      size,
      fullMs: median(full),
      argmaxMs: median(picks),
      topMs: median(top),
      maxDiffVsSteps,
    });
  }
  return rows;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

async function main(): Promise<void> {
  const options = parseArgs(process.argv.slice(2));
  const load = (profileDecoderTo?: string) =>
    loadModel(options.model, {
      cacheDir: options.cache,
      device: options.device,
      precision: options.precision,
      target: options.target,
      profileDecoderTo,
      webgpuOptions: options.webgpu,
    });

  const model = await load();
  await stepTimes(model, 64, 8); // shaders compiled, buffers allocated
  const rows: { length: number; medianMs: number; bestMs: number }[] = [];
  for (const length of options.lengths) {
    const times = await stepTimes(model, length, 24);
    rows.push({ length, medianMs: median(times), bestMs: Math.min(...times) });
  }
  const middle = options.lengths[Math.floor(options.lengths.length / 2)];
  const runSizes = await runSizeTimes(model, middle, options.runSizes);
  await model.dispose();
  for (const row of rows) {
    console.log(
      JSON.stringify({
        profile: 'decode_step',
        webgpu: options.webgpu ?? null,
        device: model.device,
        target: options.target ?? null,
        precision: model.precision,
        cache_tokens: row.length,
        median_ms: +row.medianMs.toFixed(2),
        best_ms: +row.bestMs.toFixed(2),
      }),
    );
  }
  if (rows.length > 1) {
    const [first, last] = [rows[0], rows[rows.length - 1]];
    const perToken = (last.medianMs - first.medianMs) / (last.length - first.length);
    console.log(
      JSON.stringify({
        profile: 'decode_step_slope',
        us_per_cached_token: +(perToken * 1000).toFixed(3),
        ms_at_zero: +(first.medianMs - perToken * first.length).toFixed(2),
      }),
    );
  }

  const oneTokenMs = runSizes.find((row) => row.size === 1)?.topMs;
  for (const row of runSizes) {
    const whole = row.fullMs + row.argmaxMs;
    console.log(
      JSON.stringify({
        profile: 'verify_run',
        cache_tokens: middle,
        run_tokens: row.size,
        all_logits_ms: +row.fullMs.toFixed(2),
        host_argmax_ms: +row.argmaxMs.toFixed(2),
        best_logits_ms: +row.topMs.toFixed(2),
        best_vs_all_with_argmax: +(row.topMs / whole).toFixed(3),
        ...(oneTokenMs && { in_steps: +(row.topMs / oneTokenMs).toFixed(3) }),
        max_logit_diff_vs_steps: +row.maxDiffVsSteps.toPrecision(3),
      }),
    );
  }
  const [one, most] = [runSizes[0], runSizes[runSizes.length - 1]];
  const slope = (ms: (row: RunSizeTimes) => number) =>
    +((ms(most) - ms(one)) / (most.size - one.size)).toFixed(3);
  console.log(
    JSON.stringify({
      profile: 'verify_run_slope',
      ms_per_extra_token_all_logits: slope((row) => row.fullMs + row.argmaxMs),
      ms_per_extra_token_best_logits: slope((row) => row.topMs),
    }),
  );

  mkdirSync(options.out, { recursive: true });
  const profiled = await load(join(options.out, 'decoder'));
  await stepTimes(profiled, 64, 4);
  if (options.profileRunTokens > 1)
    await verifyRunTimes(profiled, middle, options.profileRunTokens, 16);
  else await stepTimes(profiled, middle, 16);
  await profiled.dispose(); // onnxruntime writes the profile when the session ends
  console.log(JSON.stringify({ profile: 'written', dir: options.out, cache_tokens: middle }));
}

main().catch((error) => {
  console.error(error instanceof Error ? error.message : error);
  process.exit(1);
});
