/**
 * The WebGPU KV capacity plan: every tensor holds what the run needs, and the tensors spread
 * over onnxruntime's buffer-pool buckets so that no bucket is asked to keep more free buffers
 * than it does (then a decode step reuses buffers instead of allocating).
 */
import assert from 'node:assert/strict';
import { planKvCapacities } from '../../server/engine/runtime/kv-capacity';

describe('planKvCapacities (WebGPU KV cache rows)', () => {
  const bytesPerRow = 8 * 128 * 2; // the 2B model: 8 KV heads x 128, fp16

  it('gives 56 tensors at least the rows asked, no more than a bucket keeps at each size', () => {
    for (const rows of [300, 1281, 2300, 5000]) {
      const plan = planKvCapacities(56, rows, bytesPerRow);
      assert.equal(plan.length, 56);
      assert.ok(
        plan.every((capacity) => capacity >= rows),
        `rows ${rows}`,
      );
      const perSize = new Map<number, number>();
      for (const capacity of plan) perSize.set(capacity, (perSize.get(capacity) ?? 0) + 1);
      // onnxruntime 1.30 keeps 50 free 1 MB buffers, 30 of 2 MB, 20 of 4 MB, 10 of 8 MB.
      const kept: Record<number, number> = { 512: 50, 1024: 30, 2048: 20, 4096: 10 };
      for (const [capacity, count] of perSize) {
        if (kept[capacity]) assert.ok(count <= kept[capacity] - 2, `${count} x ${capacity}`);
      }
      assert.ok(perSize.size > 1, 'spread over more than one bucket');
    }
  });

  it("gives every capacity to an even number of tensors (a layer's key and value alike)", () => {
    for (const rows of [300, 1281, 2300, 5000, 9000]) {
      const counts = new Map<number, number>();
      for (const c of planKvCapacities(56, rows, bytesPerRow))
        counts.set(c, (counts.get(c) ?? 0) + 1);
      for (const [capacity, count] of counts) assert.equal(count % 2, 0, `${count} x ${capacity}`);
    }
  });

  it('fills whole buckets: the smallest plan for 300 rows is 512-row (1 MB) tensors', () => {
    const plan = planKvCapacities(56, 300, bytesPerRow);
    assert.equal(Math.min(...plan), 512);
    assert.equal(plan.filter((c) => c === 512).length, 48);
  });

  it('gives exactly the rows asked once the buckets run out', () => {
    const rows = 200_000; // 400 MB a tensor: larger than any bucket
    assert.deepEqual(planKvCapacities(4, rows, bytesPerRow), [rows, rows, rows, rows]);
  });
});
