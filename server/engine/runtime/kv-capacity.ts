/**
 * How many rows each handed-over KV tensor gets on WebGPU, so that a decode step allocates no
 * GPU memory.
 *
 * Each step's GroupQueryAttention writes a new present tensor per layer for K and V (2 x 28 on
 * the 2B model) of length max(past length, total): the past tensor's own length, when it has
 * spare rows. onnxruntime's WebGPU buffer pool ('bucket' mode, the default) rounds every request
 * up to a bucket size and keeps at most a fixed number of free buffers per bucket (20 of 4 MB,
 * 10 of 8 MB, ...). With every tensor the same size, the 56 buffers a step frees overflow their
 * bucket and the next step creates most of its 56 anew: measured on an H200, that cost 15 us per
 * cached token per step (a 1,024-token cache: 22 ms steps, of which the GPU was busy 6 ms).
 *
 * So the tensors get capacities that fill bucket sizes, spread over as many buckets as it
 * takes to keep each one within its limit: then every present reuses a buffer freed by an
 * earlier step, and rows are only appended (GroupQueryAttention reads the valid length from its
 * seqlens/total inputs, not from the tensor's length). The table is onnxruntime 1.30's
 * (core/providers/webgpu/buffer_manager.cc); were it to change, steps would allocate again,
 * still correctly. The price is memory: the 2B model's cache at 1,280 rows takes about 720 MB
 * instead of 150 (peak GPU memory of the benchmark 5.0 GB instead of 3.5 on the H200).
 */

/** [bucket bytes, free buffers kept] of onnxruntime's WebGPU storage buffer pool. */
const BUCKETS: readonly [number, number][] = [
  [1048576, 50],
  [2097152, 30],
  [4194304, 20],
  [8388608, 10],
  [12582912, 10],
  [16777216, 10],
  [26214400, 15],
  [33554432, 22],
  [44236800, 2],
  [58982400, 6],
  [67108864, 6],
  [134217728, 6],
  [167772160, 6],
];

/**
 * Buffers of a bucket left to the rest of the graph (activations, logits) so its own freed
 * buffers do not push the cache's out.
 */
const SPARE_PER_BUCKET = 2;

/** Rows added beyond what a run needs whenever the tensors are padded. */
export const KV_HEADROOM_ROWS = 256;

/**
 * Tensors smaller than this are left unpadded. Measured on an H200 (2B model, 56 tensors of
 * 2 KB a row): unpadded steps cost 7.4 ms + 15 us a cached row (9.3 ms at 128 rows, 22.1 at
 * 1,024, 37.9 at 2,048); padded ones 14.6-15.1 ms at any length. The two cross near 500 rows,
 * 1 MB a tensor; below that the pool's smaller buckets (50 to 200 kept) hold most buffers anyway.
 */
export const KV_PAD_FROM_BYTES = 1 << 20;

/**
 * Capacities (rows, ascending) for `count` tensors of `bytesPerRow` bytes a row that must each
 * hold at least `rows` rows: bucket-sized, spread so no bucket holds more than its limit; any
 * that do not fit below the largest bucket get exactly `rows` (and come first).
 */
export function planKvCapacities(count: number, rows: number, bytesPerRow: number): number[] {
  const bucketed: number[] = [];
  for (const [bytes, limit] of BUCKETS) {
    const capacity = Math.floor(bytes / bytesPerRow);
    if (capacity < rows) continue;
    // An even number: a layer's key and value must have the same length (GroupQueryAttention).
    const take = Math.min(limit - SPARE_PER_BUCKET, count - bucketed.length) & ~1;
    for (let i = 0; i < take; i++) bucketed.push(capacity);
    if (bucketed.length === count) break;
  }
  return [...new Array<number>(count - bucketed.length).fill(rows), ...bucketed];
}
