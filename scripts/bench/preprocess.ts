/**
 * Preprocessing of a pasted screenshot, stage by stage: npm run bench:preprocess --
 *   [--sizes 1280x800,1920x1080,2560x1440,2880x1800] [--runs N] [--workers N] [--json]
 *
 * The product's path: the Qwen3-VL processor settings (the test fixture's, which are the
 * published checkpoints') with the engine's default pixel cap, so a 1080p or Retina screenshot
 * is downscaled before the vision tower. For each size it prints the median of --runs runs
 * (after one warm-up) of decoding (sharp), the bicubic resize on this thread and on the worker
 * pool (parallel-resize.ts, what the engine runs; --workers sets its size, default this
 * machine's cores up to 8) in the same process, and patchify; the ratio of the two resizes;
 * and the whole preprocessing with each.
 */
import { join, resolve } from 'node:path';
import { resizeBicubicAntialiased } from '../../server/engine/preprocess/bicubic';
import { decodeImage } from '../../server/engine/preprocess/decode-image';
import {
  capImagePixels,
  readImageProcessorConfig,
} from '../../server/engine/preprocess/image-config';
import { ResizeWorkers } from '../../server/engine/preprocess/parallel-resize';
import { patchify } from '../../server/engine/preprocess/patchify';
import { smartResize } from '../../server/engine/preprocess/smart-resize';
import { screenshot } from './screenshot';

interface Options {
  sizes: [number, number][];
  runs: number;
  workers?: number;
  json: boolean;
}

function parseArgs(argv: string[]): Options {
  const options: Options = {
    sizes: [
      [1280, 800],
      [1920, 1080],
      [2560, 1440],
      [2880, 1800],
    ],
    runs: 5,
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
    if (flag === '--runs') options.runs = Number(value);
    else if (flag === '--workers') options.workers = Number(value);
    else if (flag === '--sizes') {
      options.sizes = value.split(',').map((size) => {
        const m = /^(\d+)x(\d+)$/.exec(size);
        if (!m) throw new Error('--sizes takes WIDTHxHEIGHT,... e.g. 1920x1080');
        return [Number(m[1]), Number(m[2])];
      });
    } else throw new Error(`unknown argument ${flag}`);
  }
  if (!Number.isInteger(options.runs) || options.runs < 1) {
    throw new Error('--runs takes a positive whole number');
  }
  if (
    options.workers !== undefined &&
    (!Number.isInteger(options.workers) || options.workers < 1)
  ) {
    throw new Error('--workers takes a positive whole number');
  }
  return options;
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)];
}

async function timed<T>(body: () => Promise<T> | T): Promise<[T, number]> {
  const started = performance.now();
  const result = await body();
  return [result, performance.now() - started];
}

const round = (ms: number) => Math.round(ms * 10) / 10;

async function main(): Promise<void> {
  const options = parseArgs(process.argv.slice(2));
  // BENCH_ROOT: where the repository's fixtures are (the GPU bundle's root/), as for bench:engine.
  const root = resolve(process.env.BENCH_ROOT ?? join(__dirname, '../..'));
  const config = capImagePixels(
    readImageProcessorConfig(join(root, 'test/fixtures/qwen3vl-tiny/model')),
  );
  const factor = config.patchSize * config.mergeSize;
  const workers = new ResizeWorkers(options.workers);
  workers.start();
  try {
    for (const size of options.sizes) {
      const png = await screenshot(size);
      const times = {
        decode: [] as number[],
        one: [] as number[],
        pool: [] as number[],
        patchify: [] as number[],
      };
      let target = { width: 0, height: 0 };
      for (let run = 0; run <= options.runs; run++) {
        const [image, decodeMs] = await timed(() => decodeImage(png));
        target = smartResize(image.height, image.width, factor, config.minPixels, config.maxPixels);
        const args = [
          image.data,
          image.width,
          image.height,
          3,
          target.width,
          target.height,
        ] as const;
        const [expected, oneMs] = await timed(() => resizeBicubicAntialiased(...args));
        const [resized, poolMs] = await timed(() => workers.resize(...args));
        if (Buffer.compare(Buffer.from(expected), Buffer.from(resized)) !== 0) {
          throw new Error(`${size.join('x')}: the workers' resize differs from one thread's`);
        }
        const [, patchMs] = await timed(() =>
          patchify(resized, target.width, target.height, config),
        );
        if (run === 0) continue; // warm-up: workers starting, code not yet optimised
        times.decode.push(decodeMs);
        times.one.push(oneMs);
        times.pool.push(poolMs);
        times.patchify.push(patchMs);
      }
      const [decode, one, pool, patch] = [times.decode, times.one, times.pool, times.patchify].map(
        median,
      );
      // Under the pixel cap and on the patch grid: nothing to resize, no ratio to print.
      const resizes = target.width !== size[0] || target.height !== size[1];
      const row = {
        image: size.join('x'),
        resized: `${target.width}x${target.height}`,
        workers: workers.size,
        decode_ms: round(decode),
        resize_one_thread_ms: round(one),
        resize_workers_ms: round(pool),
        resize_speedup: resizes ? Math.round((one / pool) * 100) / 100 : null,
        patchify_ms: round(patch),
        total_one_thread_ms: round(decode + one + patch),
        total_workers_ms: round(decode + pool + patch),
      };
      if (options.json) {
        console.log(JSON.stringify(row));
        continue;
      }
      if (!resizes) {
        console.log(
          `${row.image}: decode ${row.decode_ms} ms, no resize, patchify ${row.patchify_ms} ms`,
        );
        continue;
      }
      console.log(
        `${row.image} -> ${row.resized}: decode ${row.decode_ms} ms, resize ${row.resize_one_thread_ms} ms on one thread / ` +
          `${row.resize_workers_ms} ms on ${row.workers} workers (${row.resize_speedup}x), patchify ${row.patchify_ms} ms; ` +
          `total ${row.total_one_thread_ms} -> ${row.total_workers_ms} ms`,
      );
    }
  } finally {
    await workers.close();
  }
}

main().catch((error: Error) => {
  console.error(error.message);
  process.exit(1);
});
