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
    assert.equal(q.zeroPoints?.length, n * 2);
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

  it('symmetric: no zero points, the largest magnitude exact, the rest within half a step', () => {
    const n = 2;
    const k = 2 * INT4_BLOCK_SIZE;
    const values = Float32Array.from(
      { length: n * k },
      (_, i) => Math.cos(i * 0.53) * (1 + (i % 5)),
    );
    values[3] = 0;
    values[k + 7] = -9; // a negative extreme in row 1, block 0
    const q = quantizeInt4(values, n, k, { symmetric: true });
    assert.equal(q.zeroPoints, undefined);
    const back = dequantizeInt4(q, n, k);
    for (let block = 0; block < n * 2; block++) {
      const step = Math.abs(q.scales[block]);
      const slice = values.subarray(block * INT4_BLOCK_SIZE, (block + 1) * INT4_BLOCK_SIZE);
      const extreme = slice.reduce((m, v) => (Math.abs(v) > Math.abs(m) ? v : m), 0);
      for (let i = 0; i < INT4_BLOCK_SIZE; i++) {
        const at = block * INT4_BLOCK_SIZE + i;
        // Level 0 holds the extreme; the opposite side has 7 levels, so -extreme rounds one step.
        const bound =
          values[at] === extreme ? 1e-6 : Math.abs(values[at] + extreme) < step ? step : step / 2;
        assert.ok(
          Math.abs(back[at] - values[at]) <= bound + 1e-6,
          `${at}: ${back[at]} vs ${values[at]}`,
        );
      }
    }
    assert.ok(back[3] === 0, `${back[3]}`); // -0 where the scale is negative
    assert.ok(Math.abs(back[k + 7] + 9) < 1e-6);
  });

  it('refuses a K that is not a multiple of the block size', () => {
    assert.throws(() => quantizeInt4(new Float32Array(40), 1, 40), /multiple of 32/);
  });
});
