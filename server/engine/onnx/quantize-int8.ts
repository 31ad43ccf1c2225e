/**
 * Per-output-channel symmetric 8-bit weights for onnxruntime's integer matrix multiply
 * (MatMulIntegerToFloat), in the [K, N] layout it takes: one scale per output column, no zero
 * point, exact zeros stay exact.
 *
 * Levels are limited to [-63, 63] (7 bits): on x86 CPUs without VNNI (AVX2, AVX-512F)
 * onnxruntime's u8 x s8 kernels add pairs of products in 16 bits (vpmaddubsw), which saturates
 * once 2 * 255 * |w| exceeds 32767; with |w| <= 63 it cannot. onnxruntime's own quantiser
 * offers `reduce_range` for the same reason. Builds are cached and may move between machines,
 * so every build takes the safe range; per channel, 7 bits are still far finer than int4 blocks.
 */
export const INT8_WEIGHT_LEVELS = 63;

export interface Int8Weight {
  /** [K, N] row-major: the transpose of the checkpoint's [N, K]. */
  values: Int8Array;
  /** [N] */
  scales: Float32Array;
}

/**
 * Math.round (the nearest integer, halves up), branch-free: V8's Math.round and a branch on the
 * fraction both ran about 9 ns a value on random weights, this about 2; the same bytes, and a
 * 2B model's CPU int4 build took 53 s instead of 70 on a 2-core VM (its GPU build 25 instead
 * of 35). x - floor(x) is exact for every double.
 */
export function roundHalfUp(x: number): number {
  const floor = Math.floor(x);
  return floor + +(x - floor >= 0.5);
}

/** Quantises a checkpoint weight [n, k] (row-major [out, in]). */
export function quantizeInt8(values: Float32Array, n: number, k: number): Int8Weight {
  if (values.length !== n * k) throw new Error(`int8: ${values.length} values are not ${n}x${k}`);
  const out = new Int8Array(n * k);
  const scales = new Float32Array(n);
  for (let row = 0; row < n; row++) {
    const start = row * k;
    let extreme = 0;
    for (let i = 0; i < k; i++) extreme = Math.max(extreme, Math.abs(values[start + i]));
    const scale = extreme > 0 ? extreme / INT8_WEIGHT_LEVELS : 1;
    scales[row] = scale;
    const inv = 1 / scale;
    for (let i = 0; i < k; i++) out[i * n + row] = roundHalfUp(values[start + i] * inv);
  }
  return { values: out, scales };
}

/** Inverse of quantizeInt8, back to [n, k] (used by tests to bound the error). */
export function dequantizeInt8(w: Int8Weight, n: number, k: number): Float32Array {
  const out = new Float32Array(n * k);
  for (let row = 0; row < n; row++) {
    for (let i = 0; i < k; i++) out[row * k + i] = w.values[i * n + row] * w.scales[row];
  }
  return out;
}

/**
 * 8-bit blocks in the layout of com.microsoft.MatMulNBits with bits=8: for a weight [N, K]
 * (row-major [out, in]), each row cut into blocks of `blockSize` along K, one scale per block
 * (its largest magnitude over 127), values stored as unsigned bytes around 128, the zero point
 * MatMulNBits assumes when none is given. No 7-bit limit here: GPU kernels dequantise first.
 */
export interface Int8Blocks {
  /** [N, K/blockSize, blockSize] */
  packed: Uint8Array;
  /** [N, K/blockSize] */
  scales: Float32Array;
}

export function quantizeInt8Blocks(
  values: Float32Array,
  n: number,
  k: number,
  blockSize: number,
): Int8Blocks {
  if (k % blockSize !== 0) throw new Error(`int8 blocks: K=${k} is not a multiple of ${blockSize}`);
  const blocks = k / blockSize;
  const packed = new Uint8Array(n * k);
  const scales = new Float32Array(n * blocks);
  for (let b = 0; b < n * blocks; b++) {
    const start = b * blockSize;
    let extreme = 0;
    for (let i = 0; i < blockSize; i++) extreme = Math.max(extreme, Math.abs(values[start + i]));
    const scale = extreme > 0 ? extreme / 127 : 1;
    scales[b] = scale;
    for (let i = 0; i < blockSize; i++) {
      packed[start + i] = 128 + roundHalfUp(values[start + i] / scale);
    }
  }
  return { packed, scales };
}

/** Inverse of quantizeInt8Blocks (tests). */
export function dequantizeInt8Blocks(w: Int8Blocks, blockSize: number): Float32Array {
  return Float32Array.from(w.packed, (q, i) => (q - 128) * w.scales[Math.floor(i / blockSize)]);
}
