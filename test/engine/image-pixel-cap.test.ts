/**
 * The engine's default cap on image pixels: a full-HD or 4K screenshot is scaled to about
 * 1.6 MP (1600 visual tokens) instead of the published checkpoints' 16.7 MP bound.
 */
import { strict as assert } from 'node:assert';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { parseGenerateArgs } from '../../server/commands/generate';
import { loadEngine } from '../../server/engine/engine';
import { isEngineError } from '../../server/engine/errors';
import {
  capImagePixels,
  DEFAULT_MAX_IMAGE_PIXELS,
  readImageProcessorConfig,
} from '../../server/engine/preprocess/image-config';
import { TINY_MODEL_DIR } from './golden-fixture';

async function screenshot(width: number, height: number): Promise<Uint8Array> {
  const png = await sharp({
    create: { width, height, channels: 3, background: { r: 240, g: 240, b: 250 } },
  })
    .png()
    .toBuffer();
  return new Uint8Array(png);
}

describe('image pixel cap (maxImagePixels, --max-image-pixels)', function () {
  this.timeout(120000);
  let cacheDir: string;
  before(() => (cacheDir = mkdtempSync(join(tmpdir(), 'd2c-pixel-cap-'))));
  after(() => rmSync(cacheDir, { recursive: true, force: true }));

  const gridFor = async (image: Uint8Array, maxImagePixels?: number) => {
    const engine = await loadEngine({
      modelDir: TINY_MODEL_DIR,
      cacheDir,
      device: 'cpu',
      precision: 'fp32',
      maxImagePixels,
    });
    try {
      const result = await engine.generate({
        messages: [{ role: 'user', content: [{ type: 'image', image }] }],
        maxNewTokens: 1,
        sampling: { greedy: true },
      });
      return result.imageGridThw[0];
    } finally {
      await engine.dispose();
    }
  };

  it('scales a 1920x1080 screenshot to 1696x960 (1590 visual tokens) by default', async () => {
    const [t, h, w] = await gridFor(await screenshot(1920, 1080));
    assert.deepEqual([t, h, w], [1, 60, 106]);
    assert.ok(h * 16 * w * 16 <= DEFAULT_MAX_IMAGE_PIXELS);
  });

  it('"none" (Infinity) keeps the checkpoint bound: 1920x1088, 2040 visual tokens', async () => {
    assert.deepEqual(await gridFor(await screenshot(1920, 1080), Infinity), [1, 68, 120]);
  });

  it('never raises the checkpoint bound and refuses a cap below its minimum', () => {
    const config = { ...readImageProcessorConfig(TINY_MODEL_DIR), maxPixels: 500_000 };
    assert.equal(capImagePixels(config).maxPixels, 500_000);
    assert.equal(capImagePixels(config, 100_000).maxPixels, 100_000);
    for (const bad of [1000, Number.NaN]) {
      assert.throws(
        () => capImagePixels(config, bad),
        (e: unknown) => isEngineError(e, 'bad_request') && /minimum of 65536/.test(e.message),
      );
    }
  });

  it('the CLI takes --max-image-pixels N or none', () => {
    const base = ['--model', 'm', '--messages', 'f.json'];
    assert.equal(parseGenerateArgs([...base])!.maxImagePixels, undefined);
    assert.equal(
      parseGenerateArgs([...base, '--max-image-pixels', '1000000'])!.maxImagePixels,
      1_000_000,
    );
    assert.equal(
      parseGenerateArgs([...base, '--max-image-pixels', 'none'])!.maxImagePixels,
      Infinity,
    );
    assert.throws(
      () => parseGenerateArgs([...base, '--max-image-pixels', '1.5MP']),
      /--max-image-pixels must be a positive integer or "none"/,
    );
  });
});
