/**
 * 8-bit weights: channels with activations quantised per row (the CPU vision tower's and
 * prefill decoder's linears) and MatMulNBits blocks (for GPU builds): the quantisers' layouts
 * and error bounds, and the graphs onnxruntime runs against an fp32 product, including a row
 * of outliers, an all-zero row and a 3-D input.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { WeightTracker } from '../../server/engine/checkpoint/weights';
import { OPSETS } from '../../server/engine/onnx/build-graphs';
import { FileDataSink } from '../../server/engine/onnx/external-data';
import { DataType, GraphBuilder } from '../../server/engine/onnx/graph-builder';
import { type WeightFormat, linear } from '../../server/engine/onnx/layers';
import {
  INT8_WEIGHT_LEVELS,
  dequantizeInt8,
  dequantizeInt8Blocks,
  quantizeInt8,
  quantizeInt8Blocks,
  roundHalfUp,
} from '../../server/engine/onnx/quantize-int8';
import { requireWebGpu } from './support/webgpu';

/** Deterministic values in [-1, 1). */
function noise(length: number, seed: number): Float32Array {
  let x = seed >>> 0;
  return Float32Array.from({ length }, () => {
    x = (Math.imul(x, 1664525) + 1013904223) >>> 0;
    return x / 2 ** 31 - 1;
  });
}

describe('int8 channel quantisation', () => {
  it('rounds as Math.round does: halves up, negatives too, and next to every half', () => {
    const halves = Array.from({ length: 257 }, (_, i) => i - 128 + 0.5);
    const values = [
      ...halves,
      ...halves.map((x) => x - 2 ** -40),
      ...halves.map((x) => x + 2 ** -40),
      ...noise(10_000, 7).map((x) => x * 130),
      0,
      -0,
      0.49999999999999994,
      -0.49999999999999994,
    ];
    for (const x of values) assert.equal(roundHalfUp(x) + 0, Math.round(x) + 0, `${x}`);
  });

  it('stores [K, N] within +-63, each value within half a step, zeros exact', () => {
    const [n, k] = [5, 12];
    const values = noise(n * k, 1).map((v, i) => v * (1 + (i % 4)));
    values[7] = 0;
    values.fill(0, 2 * k, 3 * k); // an all-zero output channel
    const q = quantizeInt8(values, n, k);
    assert.equal(q.values.length, n * k);
    assert.equal(q.scales.length, n);
    assert.ok(q.values.every((v) => Math.abs(v) <= INT8_WEIGHT_LEVELS));
    // Column `row` of the [K, N] layout holds output channel `row`.
    assert.equal(q.values[3 * n + 1], Math.round(values[1 * k + 3] / q.scales[1]));
    const back = dequantizeInt8(q, n, k);
    for (let i = 0; i < values.length; i++) {
      const step = q.scales[Math.floor(i / k)];
      assert.ok(
        Math.abs(back[i] - values[i]) <= step / 2 + 1e-7,
        `${i}: ${back[i]} vs ${values[i]}`,
      );
    }
    assert.equal(back[7], 0);
    for (let i = 2 * k; i < 3 * k; i++) assert.equal(back[i], 0);
  });

  it('rejects a value count that is not n x k', () => {
    assert.throws(() => quantizeInt8(new Float32Array(10), 3, 4), /10 values are not 3x4/);
  });

  it('blocks: bytes around 128, each value within half its block step, zeros exact', () => {
    const [n, k, bs] = [3, 64, 32];
    const values = noise(n * k, 5).map((v, i) => v * (1 + (i % 9)));
    values.fill(0, bs, 2 * bs); // an all-zero block
    const q = quantizeInt8Blocks(values, n, k, bs);
    assert.equal(q.packed.length, n * k);
    assert.equal(q.scales.length, (n * k) / bs);
    assert.ok(q.packed.every((v) => v >= 1));
    const back = dequantizeInt8Blocks(q, bs);
    for (let i = 0; i < values.length; i++) {
      const step = q.scales[Math.floor(i / bs)];
      assert.ok(Math.abs(back[i] - values[i]) <= step / 2 + 1e-7, `${i}`);
    }
    for (let i = bs; i < 2 * bs; i++) assert.equal(back[i], 0);
  });
});

/** x @ W^T + b of a [n, k] Linear, built in `format`, against float64 on `device`. */
function linearSuite(format: WeightFormat, device: 'cpu' | 'webgpu', bound: number) {
  describe(`${format} linear on ${device}`, () => {
    const [n, k] = [48, 64];
    const weightValues = noise(n * k, 7).map((v) => v * 0.05);
    const biasValues = noise(n, 9).map((v) => v * 0.1);
    let dir: string;
    let session: ort.InferenceSession;

    before(async function () {
      if (device === 'webgpu') await requireWebGpu(this);
      dir = mkdtempSync(join(tmpdir(), 'd2c-int8-'));
      const source = {
        shapes: new Map([
          ['fc.weight', [n, k]],
          ['fc.bias', [n]],
        ]),
        readFloat32: (name: string) => (name === 'fc.weight' ? weightValues : biasValues),
      };
      const sink = new FileDataSink(join(dir, 'fc.onnx.data'), 'fc.onnx.data');
      const g = new GraphBuilder('int8-linear', sink);
      const x = g.input('x', DataType.FLOAT, ['batch', 'rows', k]);
      const weights = new WeightTracker(source);
      const y = linear({ g, weights, dtype: DataType.FLOAT, linearFormat: format }, x, 'fc', {
        bias: true,
      });
      g.node('Identity', [y], { outputs: ['y'] });
      g.output('y', DataType.FLOAT, ['batch', 'rows', n]);
      sink.close();
      writeFileSync(join(dir, 'fc.onnx'), g.encode(OPSETS));
      session = await ort.InferenceSession.create(join(dir, 'fc.onnx'), {
        executionProviders: [device],
      });
    });
    after(async () => {
      await session?.release();
      if (dir) rmSync(dir, { recursive: true, force: true });
    });

    /** x @ W^T + b in float64. */
    function reference(x: Float32Array, rows: number): Float64Array {
      const out = new Float64Array(rows * n);
      for (let r = 0; r < rows; r++) {
        for (let o = 0; o < n; o++) {
          let sum = biasValues[o];
          for (let i = 0; i < k; i++) sum += x[r * k + i] * weightValues[o * k + i];
          out[r * n + o] = sum;
        }
      }
      return out;
    }

    it('matches the fp32 product row by row, an outlier row not coarsening the others', async () => {
      const rows = 6;
      const x = noise(rows * k, 3);
      for (let i = 0; i < k; i++) x[2 * k + i] *= 400; // a row of outliers
      x.fill(0, 4 * k, 5 * k); // an all-zero row
      const { y } = await session.run({ x: new ort.Tensor('float32', x, [2, 3, k]) });
      assert.deepEqual(y.dims, [2, 3, n]);
      const got = y.data as Float32Array;
      const want = reference(x, rows);
      for (let r = 0; r < rows; r++) {
        let err = 0;
        let norm = 0;
        for (let o = 0; o < n; o++) {
          err += (got[r * n + o] - want[r * n + o]) ** 2;
          norm += (want[r * n + o] - biasValues[o]) ** 2;
        }
        if (r === 4) {
          // Zero input: exactly the bias, no NaN from a zero scale.
          for (let o = 0; o < n; o++) assert.ok(Math.abs(got[r * n + o] - biasValues[o]) < 1e-6);
          continue;
        }
        const relative = Math.sqrt(err / norm);
        assert.ok(relative < bound, `row ${r}: relative error ${relative}`);
      }
    });
  });
}

// Channels: 7-bit weights and 8-bit rows, ~1% here. Blocks: 8-bit weights per 32 values, and
// MatMulNBits' own 8-bit activation blocks (accuracy_level 4).
linearSuite('int8', 'cpu', 0.02);
linearSuite('int8-blocks', 'cpu', 0.01);
linearSuite('int8-blocks', 'webgpu', 0.01);
