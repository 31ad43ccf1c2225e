/**
 * The decoder's best-logits outputs: the blocks of 128 logits with the highest maxima, from
 * which the host picks each row's best. Checked against sorting the whole row, for a
 * vocabulary that is a multiple of the block (more blocks than are kept), one that is not
 * (padded with -Infinity), one with fewer blocks than are kept, and rows full of equal values,
 * on the CPU and on WebGPU (software Vulkan in CI).
 */
import assert from 'node:assert/strict';
import * as ort from 'onnxruntime-node';
import { DryRunSink } from '../../server/engine/onnx/external-data';
import { DataType, GraphBuilder } from '../../server/engine/onnx/graph-builder';
import { bestLogitBlocks, topLogitsPerRow } from '../../server/engine/onnx/decoder-graph';
import { readTopLogits } from '../../server/engine/runtime/best-logits';
import { seededRandom } from '../../server/engine/generation/prng';
import { webgpuTestable } from './support/webgpu';

function blocksSession(vocab: number, device: 'cpu' | 'webgpu'): Promise<ort.InferenceSession> {
  const g = new GraphBuilder('best-logit-blocks', new DryRunSink());
  bestLogitBlocks(g, g.input('logits', DataType.FLOAT, ['rows', vocab]), vocab);
  const model = g.encode([{ domain: '', version: 21 }]);
  return ort.InferenceSession.create(model, {
    executionProviders: [device],
    logSeverityLevel: 3,
  });
}

/** The row's `count` best, highest first and equal values lower id first. */
function sortedBest(row: Float32Array, count: number): number[] {
  return Array.from(row.keys())
    .sort((a, b) => row[b] - row[a] || a - b)
    .slice(0, count);
}

for (const device of ['cpu', 'webgpu'] as const) {
  describe(`best logit blocks (${device})`, function () {
    this.timeout(60_000);
    before(async function () {
      if (device === 'webgpu' && !(await webgpuTestable())) this.skip();
    });

    for (const [vocab, ties] of [
      [151936, false], // 1,187 blocks, 32 kept
      [5000, false], // 40 blocks, the last padded
      [1000, false], // 8 blocks: all of them kept
      [6000, true], // quarter steps: many equal logits
    ] as const) {
      it(`vocabulary ${vocab}${ties ? ', many ties' : ''}: the same best logits as sorting the row`, async () => {
        const session = await blocksSession(vocab, device);
        const random = seededRandom(vocab);
        const rows = 3;
        const logits = Float32Array.from({ length: rows * vocab }, () => {
          const v = (random() - 0.5) * 20;
          return ties ? Math.round(v * 4) / 4 : v;
        });
        const count = topLogitsPerRow(vocab);
        const result = await session.run({
          logits: new ort.Tensor('float32', logits, [rows, vocab]),
        });
        const best = await readTopLogits(result, count, vocab);
        await session.release();
        assert.equal(best.length, rows);
        best.forEach((top, r) => {
          const row = logits.subarray(r * vocab, (r + 1) * vocab);
          const expected = sortedBest(row, count);
          assert.deepEqual(top.ids, expected, `row ${r}`);
          assert.deepEqual(
            [...top.logits],
            expected.map((id) => row[id]),
          );
        });
      });
    }
  });
}
