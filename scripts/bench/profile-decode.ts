/**
 * Where a decode step's time goes: tsx scripts/bench/profile-decode.ts --model DIR --cache DIR
 *   [--device webgpu|cpu] [--precision int4|fp16] [--lengths 128,1024,2048] [--out DIR]
 *   [--webgpu key=value,key=value]   (WebGPU provider options, e.g. validationMode=disabled)
 *
 * 1. The decoder's step time (median of 24) after text prefills of each cache length: a step
 *    that grows with the cache spends it in attention or in moving the cache, not in weights.
 * 2. One onnxruntime profile of the decoder (prefill of the middle length, then 16 steps),
 *    written under --out; on WebGPU it holds each kernel's GPU time. scripts/gpu/summarize_profile.py
 *    turns it into a table.
 * Uses an already built model (bench-engine --prepare builds one).
 */
import { mkdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { DeviceRequest, LoadedModel, Precision } from '../../server/engine/contracts';
import { loadModel } from '../../server/engine/runtime/load-model';

interface Options {
  model: string;
  cache: string;
  device: DeviceRequest;
  precision: Precision;
  lengths: number[];
  out: string;
  webgpu?: Record<string, string>;
}

function parseArgs(argv: string[]): Options {
  const options: Partial<Options> = {
    device: 'webgpu',
    precision: 'int4',
    lengths: [128, 1024, 2048],
    out: resolve('profile-decode'),
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

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

async function main(): Promise<void> {
  const options = parseArgs(process.argv.slice(2));
  const load = (profileDecoderTo?: string) =>
    loadModel(options.model, {
      cacheDir: options.cache,
      device: options.device,
      precision: options.precision,
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
  await model.dispose();
  for (const row of rows) {
    console.log(
      JSON.stringify({
        profile: 'decode_step',
        webgpu: options.webgpu ?? null,
        device: model.device,
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

  mkdirSync(options.out, { recursive: true });
  const profiled = await load(join(options.out, 'decoder'));
  const middle = options.lengths[Math.floor(options.lengths.length / 2)];
  await stepTimes(profiled, 64, 4);
  await stepTimes(profiled, middle, 16);
  await profiled.dispose(); // onnxruntime writes the profile when the session ends
  console.log(JSON.stringify({ profile: 'written', dir: options.out, cache_tokens: middle }));
}

main().catch((error) => {
  console.error(error instanceof Error ? error.message : error);
  process.exit(1);
});
