import { strict as assert } from 'node:assert';
import { isEngineError } from '../../server/engine/errors';
import { roundHalfToEven, smartResize } from '../../server/engine/preprocess/smart-resize';

const MIN = 65536;
const MAX = 16777216;

describe('smart_resize (spec §1.2)', () => {
  // [H, W] -> [H', W'], computed by Python's transformers v5 smart_resize.
  const table: [number, number, number, number][] = [
    [720, 1280, 704, 1280],
    [16, 2048, 32, 2912],
    [1365, 2048, 1376, 2048],
    [480, 640, 480, 640],
    [100, 100, 256, 256],
    [4000, 6000, 3328, 4992],
    [256, 320, 256, 320],
    [230, 450, 224, 448],
    [30, 40, 224, 320],
  ];
  for (const [h, w, eh, ew] of table) {
    it(`${h}x${w} -> ${eh}x${ew}`, () => {
      assert.deepEqual(smartResize(h, w, 32, MIN, MAX), { height: eh, width: ew });
    });
  }

  it('rounds halves to even like Python, not up like Math.round', () => {
    assert.equal(roundHalfToEven(22.5), 22);
    assert.equal(roundHalfToEven(23.5), 24);
    assert.equal(roundHalfToEven(0.5), 0);
    assert.equal(roundHalfToEven(1.5), 2);
    assert.equal(roundHalfToEven(2.4999), 2);
    assert.equal(roundHalfToEven(2.5001), 3);
  });

  it('refuses aspect ratios above 200:1 as a bad image', () => {
    assert.throws(
      () => smartResize(10, 2010, 32, MIN, MAX),
      (e) => isEngineError(e, 'bad_image') && /aspect ratio/.test(e.message),
    );
  });

  it('keeps the result within the pixel bounds', () => {
    const { height, width } = smartResize(1080, 1920, 32, 256 * 256, 1024 * 1024);
    assert.ok(height * width <= 1024 * 1024);
    assert.equal(height % 32, 0);
    assert.equal(width % 32, 0);
  });
});
