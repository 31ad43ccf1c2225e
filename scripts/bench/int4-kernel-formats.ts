/**
 * onnxruntime's CPU int4 kernel per storage format and thread count, on a 2B decode step's
 * matrices (int4-kernel-ceiling.ts, random weights), timed in one process with the variants'
 * runs alternated round by round (this machine's speed drifts):
 *   tsx scripts/bench/int4-kernel-formats.ts [--formats 32:zp:4,32:sym:4,64:sym:4,128:sym:4,32:zp:0]
 *     [--threads 0,1] [--rounds 6] [--cache DIR]
 * A format is BLOCK:zp|sym:ACCURACY_LEVEL[:lut] (the engine's CPU int4 is 32:zp:4; lut: with
 * onnxruntime's lookup-table kernel, session config mlas.use_lut_gemm); threads 0 is
 * onnxruntime's default (one per core). Prints one JSON line per variant: median and best ms of
 * a pass over every matrix, the bytes it reads and the GB/s that makes, and its speed against
 * the first variant. Whether a variant reads faster, not only fewer bytes, says whether the
 * kernel or the memory bounds the decode step.
 */
import { resolve } from 'node:path';
import * as ort from 'onnxruntime-node';
import { SESSION_CONFIG } from '../../server/engine/runtime/session-config';
import {
  type KernelFormat,
  ensureGraph,
  kernelInput,
  kernelTextConfig,
  parseKernelFormat,
  passBytes,
} from './int4-kernel-ceiling';

interface Variant {
  format: KernelFormat;
  threads: number;
  /** onnxruntime's lookup-table int4 kernel (session config mlas.use_lut_gemm). */
  lut: boolean;
}

function parseArgs(argv: string[]) {
  const options = {
    formats: '32:zp:4,32:sym:4,64:sym:4,128:sym:4,32:zp:0',
    threads: '0,1',
    rounds: 6,
    cache: resolve('.cache/bench-engine/int4-kernel'),
  };
  for (let i = 0; i < argv.length; i += 2) {
    const [flag, value] = [argv[i], argv[i + 1]];
    if (value === undefined) throw new Error(`${flag} needs a value`);
    if (flag === '--formats') options.formats = value;
    else if (flag === '--threads') options.threads = value;
    else if (flag === '--rounds') options.rounds = Number(value);
    else if (flag === '--cache') options.cache = resolve(value);
    else throw new Error(`unknown option ${flag}`);
  }
  const formats = options.formats.split(',').map((spec) => {
    const lut = spec.endsWith(':lut');
    return { format: parseKernelFormat(lut ? spec.slice(0, -':lut'.length) : spec), lut };
  });
  const threads = options.threads.split(',').map(Number);
  const variants: Variant[] = formats.flatMap(({ format, lut }) =>
    threads.map((count) => ({ format, lut, threads: count })),
  );
  return { variants, rounds: options.rounds, cache: options.cache };
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

async function main(): Promise<void> {
  const { variants, rounds, cache } = parseArgs(process.argv.slice(2));
  const text = kernelTextConfig();
  const runs = [];
  for (const variant of variants) {
    const session = await ort.InferenceSession.create(
      ensureGraph(text, cache, 'cpu', variant.format),
      {
        graphOptimizationLevel: 'all',
        extra: variant.lut
          ? { session: { ...SESSION_CONFIG.session, 'mlas.use_lut_gemm': '1' } }
          : SESSION_CONFIG,
        ...(variant.threads ? { intraOpNumThreads: variant.threads } : {}),
      },
    );
    const feeds = Object.fromEntries(
      session.inputNames.map((name) => {
        const { type, data, dims } = kernelInput(name, 1, 'cpu');
        return [name, new ort.Tensor(type, data, dims)];
      }),
    );
    for (let i = 0; i < 3; i++) await session.run(feeds);
    runs.push({ variant, session, feeds, times: [] as number[] });
  }
  for (let round = 0; round < rounds; round++) {
    for (const run of runs) {
      for (let i = 0; i < 3; i++) {
        const started = performance.now();
        await run.session.run(run.feeds);
        run.times.push(performance.now() - started);
      }
    }
  }
  const firstMs = median(runs[0].times);
  for (const { variant, session, times } of runs) {
    await session.release();
    const { blockSize, zeroPoints, accuracyLevel } = variant.format;
    const bytes = passBytes(text, 'cpu', variant.format);
    const ms = median(times);
    console.log(
      JSON.stringify({
        bench: 'int4_kernel_formats',
        block_size: blockSize,
        zero_points: zeroPoints,
        accuracy_level: accuracyLevel,
        lut_kernel: variant.lut,
        threads: variant.threads || 'default',
        median_ms: +ms.toFixed(1),
        best_ms: +Math.min(...times).toFixed(1),
        mb_per_pass: Math.round(bytes / 1e6),
        gb_per_s: +(bytes / ms / 1e6).toFixed(1),
        speed_vs_first: +(firstMs / ms).toFixed(3),
      }),
    );
  }
}

main().catch((error) => {
  console.error(error instanceof Error ? error.message : error);
  process.exit(1);
});
