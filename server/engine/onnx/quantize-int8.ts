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
    for (let i = 0; i < k; i++) out[i * n + row] = Math.round(values[start + i] * inv);
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
