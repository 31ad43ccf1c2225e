/**
 * The resize on worker threads: the same bytes as the one-thread resize (from source under tsx
 * and from a bundled worker, as dist/ ships it), the same bytes and one warning when workers
 * cannot run, and an idle pool that does not keep a process alive.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import * as esbuild from 'esbuild';
import { resizeBicubicAntialiased } from '../../server/engine/preprocess/bicubic';
import {
  ResizeWorkers,
  splitRows,
  workerEntryBeside,
} from '../../server/engine/preprocess/parallel-resize';

const ROOT = resolve(__dirname, '../..');

function randomImage(n: number, seed: number): Uint8Array {
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i++) {
    seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
    out[i] = seed >>> 24;
  }
  return out;
}

/** Collects process warnings while `body` runs. */
async function warningsDuring(body: () => Promise<void>): Promise<string[]> {
  const seen: string[] = [];
  const listener = (warning: Error) => seen.push(warning.message);
  process.on('warning', listener);
  try {
    await body();
    // Warnings are emitted on the next tick.
    await new Promise((done) => setImmediate(done));
  } finally {
    process.off('warning', listener);
  }
  return seen;
}

// width, height, out width, out height: both axes down, one axis only, and up.
const CASES: [number, number, number, number][] = [
  [1000, 700, 640, 448],
  [900, 500, 900, 512],
  [700, 600, 512, 600],
  [400, 300, 800, 608],
];

describe('image resize on worker threads', function () {
  this.timeout(60_000);
  let dir: string;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'resize-workers-'));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('splits rows into contiguous bands that cover them once', () => {
    for (const [count, parts] of [
      [960, 8],
      [7, 3],
      [2, 8],
      [1, 1],
    ]) {
      const bands = splitRows(count, parts);
      assert.equal(bands.length, Math.min(count, parts));
      assert.equal(bands[0].from, 0);
      assert.equal(bands.at(-1)!.to, count);
      bands.slice(1).forEach((band, i) => assert.equal(band.from, bands[i].to));
      assert.ok(bands.every((band) => band.to - band.from >= Math.floor(count / parts)));
    }
  });

  it('finds the worker beside the bundle, or beside the source under tsx', () => {
    assert.deepEqual(workerEntryBeside('/x/dist/cli.js'), { file: '/x/dist/resize-worker.js' });
    assert.deepEqual(workerEntryBeside('/x/bundle/bench.cjs'), {
      file: '/x/bundle/resize-worker.cjs',
    });
    assert.deepEqual(workerEntryBeside('/x/server/parallel-resize.ts'), {
      file: '/x/server/resize-worker.ts',
      execArgv: ['--require', 'tsx/cjs'],
    });
  });

  it('gives the one-thread bytes, from source, with more bands than cores', async () => {
    const workers = new ResizeWorkers(3);
    try {
      const warnings = await warningsDuring(async () => {
        for (const [i, [w, h, ow, oh]] of CASES.entries()) {
          const src = randomImage(w * h * 3, i + 1);
          const expected = resizeBicubicAntialiased(src, w, h, 3, ow, oh);
          const actual = await workers.resize(src, w, h, 3, ow, oh);
          assert.deepEqual(actual, expected, `${w}x${h} -> ${ow}x${oh}`);
        }
      });
      assert.deepEqual(warnings, []);
    } finally {
      await workers.close();
    }
  });

  it('gives the one-thread bytes from the bundled worker, several resizes at once', async () => {
    const file = join(dir, 'resize-worker.js');
    await esbuild.build({
      entryPoints: [join(ROOT, 'server/engine/preprocess/resize-worker.ts')],
      outfile: file,
      bundle: true,
      platform: 'node',
      format: 'cjs',
      logLevel: 'silent',
    });
    const workers = new ResizeWorkers(2, { file });
    try {
      const sources = CASES.map(([w, h], i) => randomImage(w * h * 3, 10 + i));
      const results = await Promise.all(
        CASES.map(([w, h, ow, oh], i) => workers.resize(sources[i], w, h, 3, ow, oh)),
      );
      CASES.forEach(([w, h, ow, oh], i) =>
        assert.deepEqual(results[i], resizeBicubicAntialiased(sources[i], w, h, 3, ow, oh)),
      );
    } finally {
      await workers.close();
    }
  });

  it('resizes on this thread, with one warning, when the worker file is missing', async () => {
    const workers = new ResizeWorkers(2, { file: join(dir, 'nowhere.js') });
    const [w, h, ow, oh] = CASES[0];
    const src = randomImage(w * h * 3, 7);
    const expected = resizeBicubicAntialiased(src, w, h, 3, ow, oh);
    const warnings = await warningsDuring(async () => {
      assert.deepEqual(await workers.resize(src, w, h, 3, ow, oh), expected);
      assert.deepEqual(await workers.resize(src, w, h, 3, ow, oh), expected);
    });
    assert.equal(warnings.length, 1);
    assert.match(warnings[0], /one thread from now on: the resize worker .*nowhere\.js is missing/);
  });

  it('does not wait forever for a worker that exits: same bytes, one warning', async () => {
    const file = join(dir, 'exits.js');
    writeFileSync(file, 'process.exit(3);\n');
    const workers = new ResizeWorkers(2, { file });
    const [w, h, ow, oh] = CASES[1];
    const src = randomImage(w * h * 3, 8);
    const warnings = await warningsDuring(async () => {
      assert.deepEqual(
        await workers.resize(src, w, h, 3, ow, oh),
        resizeBicubicAntialiased(src, w, h, 3, ow, oh),
      );
    });
    assert.equal(warnings.length, 1);
    assert.match(warnings[0], /a resize worker exited \(code 3\)/);
  });

  it('keeps small images on this thread (no worker is even looked for)', async () => {
    const workers = new ResizeWorkers(2, { file: join(dir, 'nowhere.js') });
    const src = randomImage(120 * 90 * 3, 9);
    const warnings = await warningsDuring(async () => {
      assert.deepEqual(
        await workers.resize(src, 120, 90, 3, 64, 48),
        resizeBicubicAntialiased(src, 120, 90, 3, 64, 48),
      );
    });
    assert.deepEqual(warnings, []);
  });

  it('lets a process exit while its workers are idle', () => {
    const script = `
      const { ResizeWorkers } = require('./server/engine/preprocess/parallel-resize');
      const workers = new ResizeWorkers(2);
      workers.start();
      workers.resize(new Uint8Array(900 * 500 * 3), 900, 500, 3, 640, 352)
        .then((out) => console.log('resized', out.length));`;
    const child = spawnSync(process.execPath, ['--require', 'tsx/cjs', '-e', script], {
      cwd: ROOT,
      encoding: 'utf8',
      timeout: 30_000,
    });
    assert.equal(child.error, undefined, 'the process did not exit by itself');
    assert.equal(child.status, 0, child.stderr);
    assert.match(child.stdout, /resized 675840/);
  });
});
