/**
 * Vision outputs on disk (vision-disk-cache.ts): the file format and its bound, and an engine
 * started afresh on the same build skipping the vision tower for an image seen before, with
 * the same tokens, but not at another grid.
 */
import { strict as assert } from 'node:assert';
import {
  mkdtempSync,
  readFileSync,
  readdirSync,
  rmSync,
  statSync,
  utimesSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type {
  ChatMessage,
  Engine,
  GenerateRequest,
  VisionOutput,
} from '../../server/engine/contracts';
import { loadEngine } from '../../server/engine/engine';
import { KEEP_FREE_BYTES } from '../../server/engine/generation/disk-space';
import { VisionDiskCache } from '../../server/engine/generation/vision-disk-cache';
import { TINY_IMAGES_DIR, TINY_MODEL_DIR } from './golden-fixture';

const output = (seed: number, tokens = 4): VisionOutput => {
  const values = (n: number) => Float32Array.from({ length: n }, (_, i) => Math.sin(seed + i));
  return {
    tokens,
    imageEmbeds: values(tokens * 8),
    deepstack: [values(tokens * 8), values(tokens * 8)],
  };
};

describe('vision outputs on disk', function () {
  this.timeout(120_000);
  let dir: string;
  beforeEach(() => (dir = mkdtempSync(join(tmpdir(), 'd2c-vision-disk-'))));
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('reads back exactly what it wrote, under the name of the device, image and grid', async () => {
    const cache = new VisionDiskCache(dir);
    const name = VisionDiskCache.entryName('cpu', 'abc', [1, 4, 6]);
    assert.equal(name, 'cpu-abc-1x4x6');
    assert.equal(await cache.read(name), undefined);
    cache.write(name, output(1));
    await cache.flushed();
    assert.deepEqual(await cache.read(name), output(1));
    assert.equal(await cache.read(VisionDiskCache.entryName('cpu', 'abc', [1, 6, 4])), undefined);
  });

  it('deletes a file that is not whole, and the next write replaces it', async () => {
    const cache = new VisionDiskCache(dir);
    cache.write('a', output(1));
    await cache.flushed();
    const file = join(dir, 'a.vision');
    const bytes = readFileSync(file);
    writeFileSync(file, bytes.subarray(0, bytes.length - 4)); // cut short, as by a crash
    assert.equal(await cache.read('a'), undefined);
    assert.deepEqual(readdirSync(dir), []);
    writeFileSync(file, 'not a cache file');
    assert.equal(await cache.read('a'), undefined);
    cache.write('a', output(2));
    await cache.flushed();
    assert.deepEqual(await cache.read('a'), output(2));
  });

  it('keeps the most recently used files within its bound', async () => {
    const size = () => readdirSync(dir).reduce((n, f) => n + statSync(join(dir, f)).size, 0);
    const one = output(0).imageEmbeds.byteLength * 3 + 100;
    const cache = new VisionDiskCache(dir, 2.5 * one);
    const pause = () => new Promise((done) => setTimeout(done, 20)); // distinct file times
    cache.write('a', output(1));
    cache.write('b', output(2));
    await cache.flushed();
    await pause();
    assert.ok(await cache.read('a'), 'a was used last');
    await pause();
    cache.write('c', output(3));
    await cache.flushed();
    assert.deepEqual(readdirSync(dir).sort(), ['a.vision', 'c.vision']);
    assert.ok(size() <= 2.5 * one);
  });

  it('writes nothing that would leave the disk under 2 GiB free', async () => {
    const measure = new VisionDiskCache(join(dir, 'measure'));
    measure.write('a', output(1));
    await measure.flushed();
    const bytes = statSync(join(dir, 'measure', 'a.vision')).size;
    const free = (extra: number) => async () => KEEP_FREE_BYTES + bytes + extra;
    const nearlyFull = new VisionDiskCache(dir, undefined, free(-1));
    nearlyFull.write('a', output(1));
    await nearlyFull.flushed();
    assert.equal(await nearlyFull.read('a'), undefined);
    const enough = new VisionDiskCache(dir, undefined, free(0));
    enough.write('a', output(1));
    await enough.flushed();
    assert.deepEqual(await enough.read('a'), output(1));
  });

  it('clears what a write killed long ago left behind, not a write in progress', async () => {
    const cache = new VisionDiskCache(dir);
    writeFileSync(join(dir, 'a.vision.123.tmp'), 'a write in progress');
    writeFileSync(join(dir, 'b.vision.456.tmp'), 'a write killed an hour ago');
    const anHourAgo = new Date(Date.now() - 3_600_000);
    utimesSync(join(dir, 'b.vision.456.tmp'), anHourAgo, anHourAgo);
    cache.write('c', output(1));
    await cache.flushed();
    assert.deepEqual(readdirSync(dir).sort(), ['a.vision.123.tmp', 'c.vision']);
  });

  it('drops a write that cannot be made, and goes on', async () => {
    const blocked = join(dir, 'file');
    writeFileSync(blocked, '');
    const cache = new VisionDiskCache(join(blocked, 'images'));
    cache.write('a', output(1));
    await cache.flushed();
    assert.equal(await cache.read('a'), undefined);
  });

  describe('in the engine (tiny checkpoint, CPU, fp32)', () => {
    let cacheDir: string;
    const engines: Engine[] = [];
    let seenGrid: [number, number, number][] = [];
    const image = new Uint8Array(readFileSync(join(TINY_IMAGES_DIR, 'diagram_450x230.png')));
    const ask: ChatMessage[] = [
      {
        role: 'user',
        content: [
          { type: 'image', image },
          { type: 'text', text: 'Return the XML.' },
        ],
      },
    ];
    const request: GenerateRequest = {
      messages: ask,
      maxNewTokens: 12,
      sampling: { greedy: true },
    };
    /** A fresh engine on the shared build (a server started again). */
    const start = async (maxImagePixels?: number) => {
      const engine = await loadEngine({
        modelDir: TINY_MODEL_DIR,
        cacheDir,
        device: 'cpu',
        precision: 'fp32',
        maxImagePixels,
      });
      engines.push(engine);
      return engine;
    };
    before(() => (cacheDir = mkdtempSync(join(tmpdir(), 'd2c-vision-disk-engine-'))));
    after(async () => {
      await Promise.all(engines.map((engine) => engine.dispose()));
      rmSync(cacheDir, { recursive: true, force: true });
    });

    it('an engine started afresh skips the tower for an image seen before, with the same tokens', async () => {
      const first = await start();
      const seen = await first.generate(request);
      assert.equal(seen.stats!.cachedImages, 0);
      seenGrid = seen.imageGridThw;
      await engines.pop()!.dispose(); // waits for the write
      const again = await (await start()).generate(request);
      assert.equal(again.stats!.cachedImages, 1);
      assert.deepEqual(again.tokenIds, seen.tokenIds);
      const [build] = readdirSync(cacheDir).filter((name) => name.startsWith('fp32-'));
      assert.equal(readdirSync(join(cacheDir, build!, 'images')).length, 1);
    });

    it('runs the tower again for the same image at another grid', async () => {
      const smaller = await (await start(70_000)).generate(request);
      assert.equal(smaller.stats!.cachedImages, 0);
      assert.notDeepEqual(smaller.imageGridThw, seenGrid);
    });
  });
});
