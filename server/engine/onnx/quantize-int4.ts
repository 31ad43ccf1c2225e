/**
 * 4-bit block quantisation in the layout of com.microsoft.MatMulNBits: for a weight W [N, K]
 * (the checkpoint's [out, in]), each row is cut into blocks of 32 along K, each block gets a
 * scale, and values are packed two per byte, low nibble first. Exact zeros stay exact.
 * - asymmetric (default): each block also gets a 4-bit zero point and its range [min, max]
 *   (widened to include 0) spans the 16 levels.
 * - symmetric: no zero points (MatMulNBits then uses 8). The scale is the block's
 *   largest-magnitude value over -8, signed, so that value lands exactly on level 0 and the
 *   other side keeps 7 levels (as onnxruntime's own quantiser does). onnxruntime's WebGPU
 *   fusions of a layer's projections take only weights without zero points.
 */
export const INT4_BLOCK_SIZE = 32;

export interface Int4Weight {
  /** [N, K/32, 16] */
  packed: Uint8Array;
  /** [N, K/32] */
  scales: Float32Array;
  /** [N, ceil((K/32)/2)]; absent when symmetric. */
  zeroPoints?: Uint8Array;
}

const SYMMETRIC_ZERO = 8;

export function quantizeInt4(
  values: Float32Array,
  n: number,
  k: number,
  { symmetric = false }: { symmetric?: boolean } = {},
): Int4Weight {
  const bs = INT4_BLOCK_SIZE;
  if (k % bs !== 0) throw new Error(`int4: K=${k} is not a multiple of ${bs}`);
  const blocks = k / bs;
  const zpStride = Math.ceil(blocks / 2);
  const packed = new Uint8Array((n * k) / 2);
  const scales = new Float32Array(n * blocks);
  const zeroPoints = symmetric ? undefined : new Uint8Array(n * zpStride);
  for (let row = 0; row < n; row++) {
    for (let b = 0; b < blocks; b++) {
      const start = row * k + b * bs;
      let lo = 0;
      let hi = 0;
      for (let i = 0; i < bs; i++) {
        const v = values[start + i];
        if (v < lo) lo = v;
        if (v > hi) hi = v;
      }
      let scale: number;
      let zp: number;
      if (zeroPoints) {
        scale = hi > lo ? (hi - lo) / 15 : 1;
        zp = Math.min(15, Math.max(0, Math.round(-lo / scale)));
        zeroPoints[row * zpStride + (b >> 1)] |= zp << ((b & 1) * 4);
      } else {
        const extreme = -lo > hi ? lo : hi;
        scale = extreme !== 0 ? extreme / -SYMMETRIC_ZERO : 1;
        zp = SYMMETRIC_ZERO;
      }
      const inv = 1 / scale;
      scales[row * blocks + b] = scale;
      const out = start / 2;
      for (let i = 0; i < bs; i += 2) {
        packed[out + i / 2] =
          nibble(values[start + i] * inv, zp) | (nibble(values[start + i + 1] * inv, zp) << 4);
      }
    }
  }
  return { packed, scales, zeroPoints };
}

/** round(x) + zp clamped to [0, 15]; x + zp >= -0.5 within a block, so |0 floors there. */
function nibble(x: number, zp: number): number {
  const q = (x + zp + 0.5) | 0;
  return q < 0 ? 0 : q > 15 ? 15 : q;
}

/** Inverse of quantizeInt4 (used by tests to bound the quantisation error). */
export function dequantizeInt4(w: Int4Weight, n: number, k: number): Float32Array {
  const bs = INT4_BLOCK_SIZE;
  const blocks = k / bs;
  const zpStride = Math.ceil(blocks / 2);
  const out = new Float32Array(n * k);
  for (let row = 0; row < n; row++) {
    for (let b = 0; b < blocks; b++) {
      const scale = w.scales[row * blocks + b];
      const zp = w.zeroPoints
        ? (w.zeroPoints[row * zpStride + (b >> 1)] >> ((b & 1) * 4)) & 15
        : SYMMETRIC_ZERO;
      for (let i = 0; i < bs; i++) {
        const idx = row * k + b * bs + i;
        const q = (w.packed[idx >> 1] >> ((idx & 1) * 4)) & 15;
        out[idx] = (q - zp) * scale;
      }
    }
  }
  return out;
}
