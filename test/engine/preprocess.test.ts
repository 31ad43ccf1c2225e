import { strict as assert } from 'node:assert';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import sharp from 'sharp';
import { isEngineError } from '../../server/engine/errors';
import { decodeImage } from '../../server/engine/preprocess/decode-image';
import { readImageProcessorConfig } from '../../server/engine/preprocess/image-config';
import { preprocessImage } from '../../server/engine/preprocess/preprocess-image';
import { TINY_IMAGES_DIR, TINY_MODEL_DIR } from './golden-fixture';

const mockup = () => new Uint8Array(readFileSync(join(TINY_IMAGES_DIR, 'mockup_320x256.png')));

async function encoded(
  format: 'png' | 'jpeg' | 'webp' | 'gif' | 'tiff',
  width: number,
  height: number,
  channels: 3 | 4,
  background: { r: number; g: number; b: number; alpha?: number },
): Promise<Uint8Array> {
  const buffer = await sharp({ create: { width, height, channels, background } })
    [format]()
    .toBuffer();
  return new Uint8Array(buffer);
}

describe('image decoding and preprocessing', () => {
  it('decodes PNG, JPEG, WebP and GIF to RGB', async () => {
    for (const format of ['png', 'jpeg', 'webp', 'gif'] as const) {
      const image = await decodeImage(await encoded(format, 40, 30, 3, { r: 200, g: 10, b: 10 }));
      assert.deepEqual([image.width, image.height, image.data.length], [40, 30, 40 * 30 * 3]);
      assert.ok(Math.abs(image.data[0] - 200) <= 8, `${format}: red ${image.data[0]}`);
    }
  });

  it('composites transparency on white, as transformers convert_rgb does', async () => {
    const image = await decodeImage(await encoded('png', 8, 8, 4, { r: 0, g: 0, b: 0, alpha: 0 }));
    assert.deepEqual([...image.data.slice(0, 3)], [255, 255, 255]);
  });

  it('refuses bytes that are not an image', async () => {
    await assert.rejects(
      decodeImage(new TextEncoder().encode('<html>hello</html>')),
      (e) => isEngineError(e, 'bad_image') && /PNG, JPEG, WebP or GIF/.test(e.message),
    );
  });

  it('refuses a truncated PNG', async () => {
    const bytes = mockup();
    await assert.rejects(decodeImage(bytes.slice(0, bytes.length - 200)), (e) =>
      isEngineError(e, 'bad_image'),
    );
  });

  it('refuses formats other than PNG, JPEG, WebP and GIF', async () => {
    await assert.rejects(
      decodeImage(await encoded('tiff', 8, 8, 3, { r: 1, g: 2, b: 3 })),
      (e) => isEngineError(e, 'bad_image') && /Unsupported image format tiff/.test(e.message),
    );
  });

  it('refuses images over the byte limit and over the pixel limit', async () => {
    const bytes = mockup();
    await assert.rejects(
      decodeImage(bytes, { maxBytes: 100, maxPixels: 1e9 }),
      (e) => isEngineError(e, 'image_too_large') && /limit is/.test(e.message),
    );
    await assert.rejects(
      decodeImage(bytes, { maxBytes: 1e9, maxPixels: 320 * 256 - 1 }),
      (e) => isEngineError(e, 'image_too_large') && /320x256/.test(e.message),
    );
  });

  it('refuses an empty image', async () => {
    await assert.rejects(decodeImage(new Uint8Array(0)), (e) => isEngineError(e, 'bad_image'));
  });

  it('turns an image into merge-block ordered patches with the right grid', async () => {
    const config = readImageProcessorConfig(TINY_MODEL_DIR);
    const image = await preprocessImage(
      await encoded('png', 64, 64, 3, { r: 255, g: 0, b: 127 }),
      config,
    );
    // 64x64 is below min_pixels (256x256), so it is scaled up to 256x256: grid 16x16.
    assert.deepEqual(image.gridThw, [1, 16, 16]);
    assert.equal(image.tokens, 64);
    assert.equal(image.pixelValues.length, 256 * 768);
    // Row layout: channel-major, one 16x16 frame per channel.
    assert.equal(image.pixelValues[0], 1);
    assert.equal(image.pixelValues[255], 1);
    assert.equal(image.pixelValues[256], -1);
    assert.equal(image.pixelValues[512], Math.fround((127 - 127.5) / 127.5));
  });
});
