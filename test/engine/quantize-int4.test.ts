/** 4-bit block quantisation in MatMulNBits layout: round-trip error bounds and packing. */
import assert from 'node:assert/strict';
import {
  INT4_BLOCK_SIZE,
  dequantizeInt4,
  quantizeInt4,
} from '../../server/engine/onnx/quantize-int4';

describe('int4 block quantisation', () => {
  it('round-trips every value within half a quantisation step, zeros exactly', () => {
    const n = 3;
    const k = 4 * INT4_BLOCK_SIZE;
    const values = Float32Array.from(
      { length: n * k },
      (_, i) => Math.sin(i * 0.37) * (1 + (i % 7)),
    );
    values[5] = 0;
    values.fill(0, k, k + INT4_BLOCK_SIZE); // an all-zero block
    const q = quantizeInt4(values, n, k);
    assert.equal(q.packed.length, (n * k) / 2);
    assert.equal(q.scales.length, n * 4);
    assert.equal(q.zeroPoints.length, n * 2);
    const back = dequantizeInt4(q, n, k);
    for (let i = 0; i < values.length; i++) {
      const block = Math.floor(i / INT4_BLOCK_SIZE);
      const step = q.scales[block];
      assert.ok(
        Math.abs(back[i] - values[i]) <= step / 2 + 1e-6,
        `value ${i}: ${back[i]} vs ${values[i]}`,
      );
    }
    assert.equal(back[5], 0);
    for (let i = k; i < k + INT4_BLOCK_SIZE; i++) assert.equal(back[i], 0);
  });

  it('refuses a K that is not a multiple of the block size', () => {
    assert.throws(() => quantizeInt4(new Float32Array(40), 1, 40), /multiple of 32/);
  });
});
