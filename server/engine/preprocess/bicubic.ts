/**
 * Antialiased bicubic resize of interleaved uint8 pixels, computed the way the reference
 * (transformers with torch on CPU, i.e. PyTorch's uint8 antialiased kernel, itself a port of
 * Pillow's) does it: Keys cubic with a = -0.5, support widened by the downscale factor, pixel
 * centres at (i + 0.5) * scale, weights normalized then turned into fixed-point integers,
 * width pass first and height pass second with a rounded, clamped uint8 image in between; an
 * axis whose size does not change is skipped. sharp's own cubic kernel differs, which is why
 * this is written out here.
 */

const A = -0.5;

function cubicWeight(x: number): number {
  x = Math.abs(x);
  if (x < 1) return ((A + 2) * x - (A + 3)) * x * x + 1;
  if (x < 2) return ((A * x - 5 * A) * x + 8 * A) * x - 4 * A;
  return 0;
}

export interface AxisWeights {
  /** First source index per output index. */
  start: Int32Array;
  /** Number of taps per output index. */
  size: Int32Array;
  /** `maxTaps` fixed-point weights per output index. */
  weights: Int32Array;
  maxTaps: number;
  /** Weights are scaled by 2^precision. */
  precision: number;
}

/**
 * PyTorch's `_compute_index_ranges_int16_weights`: double weights, then the largest precision
 * that keeps every weight within int16.
 */
export function axisWeights(inSize: number, outSize: number): AxisWeights {
  const scale = inSize / outSize;
  const support = scale >= 1 ? 2 * scale : 2;
  const invScale = scale >= 1 ? 1 / scale : 1;
  const maxTaps = Math.ceil(support) * 2 + 1;
  const start = new Int32Array(outSize);
  const size = new Int32Array(outSize);
  const real = new Float64Array(outSize * maxTaps);
  let maxWeight = 0;
  for (let i = 0; i < outSize; i++) {
    const center = scale * (i + 0.5);
    const xmin = Math.max(Math.trunc(center - support + 0.5), 0);
    const xsize = Math.min(
      Math.max(Math.min(Math.trunc(center + support + 0.5), inSize) - xmin, 0),
      maxTaps,
    );
    const base = i * maxTaps;
    let total = 0;
    for (let j = 0; j < xsize; j++) {
      const w = cubicWeight((j + xmin - center + 0.5) * invScale);
      real[base + j] = w;
      total += w;
    }
    if (total !== 0) {
      for (let j = 0; j < xsize; j++) {
        real[base + j] /= total;
        maxWeight = Math.max(maxWeight, real[base + j]);
      }
    }
    start[i] = xmin;
    size[i] = xsize;
  }
  let precision = 0;
  for (; precision < 22; precision++) {
    if (Math.trunc(0.5 + maxWeight * 2 ** (precision + 1)) >= 1 << 15) break;
  }
  const weights = new Int32Array(real.length);
  for (let k = 0; k < real.length; k++) {
    const v = real[k] * 2 ** precision;
    weights[k] = Math.trunc(v < 0 ? v - 0.5 : v + 0.5);
  }
  return { start, size, weights, maxTaps, precision };
}

/** Rounds a fixed-point sum back to a pixel value, clamped to 0..255. */
function toByte(acc: number, precision: number): number {
  const v = acc >> precision;
  return v < 0 ? 0 : v > 255 ? 255 : v;
}

/** Which rows of a pass one call computes: [from, to) of its output rows. */
export interface RowRange {
  from: number;
  to: number;
}

/**
 * The width pass: each output pixel mixes a few neighbours of the same row. RGB (the only
 * layout the engine resizes) accumulates its three channels in one walk over the taps. Rows
 * are independent, so `rows` lets workers share the pass (see parallel-resize.ts).
 */
export function resampleWidth(
  src: Uint8Array,
  dst: Uint8Array,
  width: number,
  channels: number,
  outWidth: number,
  { start, size, weights, maxTaps, precision }: AxisWeights,
  rows: RowRange,
): void {
  const half = precision > 0 ? 1 << (precision - 1) : 0;
  for (let y = rows.from; y < rows.to; y++) {
    const rowIn = y * width * channels;
    let o = y * outWidth * channels;
    for (let x = 0; x < outWidth; x++) {
      const taps = size[x];
      const wBase = x * maxTaps;
      const first = rowIn + start[x] * channels;
      if (channels === 3) {
        let r = half;
        let g = half;
        let b = half;
        for (let j = 0, p = first; j < taps; j++, p += 3) {
          const w = weights[wBase + j];
          r += src[p] * w;
          g += src[p + 1] * w;
          b += src[p + 2] * w;
        }
        dst[o++] = toByte(r, precision);
        dst[o++] = toByte(g, precision);
        dst[o++] = toByte(b, precision);
        continue;
      }
      for (let c = 0; c < channels; c++) {
        let acc = half;
        for (let j = 0, p = first + c; j < taps; j++, p += channels) {
          acc += src[p] * weights[wBase + j];
        }
        dst[o++] = toByte(acc, precision);
      }
    }
  }
}

/**
 * The height pass over output rows `rows`: each output row is a weighted sum of a few whole
 * input rows, taken four rows per sweep, so the usual row of up to four taps is one sweep that
 * writes the bytes. `rowLength` is width * channels.
 */
export function resampleHeight(
  src: Uint8Array,
  dst: Uint8Array,
  rowLength: number,
  { start, size, weights, maxTaps, precision }: AxisWeights,
  rows: RowRange,
): void {
  const n = rowLength;
  const acc = new Int32Array(n);
  const half = precision > 0 ? 1 << (precision - 1) : 0;
  for (let y = rows.from; y < rows.to; y++) {
    const taps = size[y];
    const wBase = y * maxTaps;
    const first = start[y] * n;
    const out = y * n;
    // Sweeps before the last add four rows each into acc (the first starts it from `half`).
    let j = 0;
    for (; taps - j > 4; j += 4) {
      const [a, b, c, d] = [0, 1, 2, 3].map((k) => first + (j + k) * n);
      const [wa, wb, wc, wd] = [0, 1, 2, 3].map((k) => weights[wBase + j + k]);
      for (let i = 0; i < n; i++) {
        const sum = src[a + i] * wa + src[b + i] * wb + src[c + i] * wc + src[d + i] * wd;
        acc[i] = (j === 0 ? half : acc[i]) + sum;
      }
    }
    // The last sweep takes the remaining one to four rows (a missing row is read with weight
    // 0) and writes the bytes.
    const left = taps - j;
    const row = (k: number) => first + (k < left ? j + k : j) * n;
    const weight = (k: number) => (k < left ? weights[wBase + j + k] : 0);
    const [a, b, c, d] = [row(0), row(1), row(2), row(3)];
    const [wa, wb, wc, wd] = [weight(0), weight(1), weight(2), weight(3)];
    const fromAcc = j > 0;
    for (let i = 0; i < n; i++) {
      const sum = src[a + i] * wa + src[b + i] * wb + src[c + i] * wc + src[d + i] * wd;
      dst[out + i] = toByte((fromAcc ? acc[i] : half) + sum, precision);
    }
  }
}

/**
 * One pass of a resize over its whole image: which axis, the buffers it reads and writes, the
 * weights, and how many output rows it has (rows are independent, so workers can share them).
 * `B` is the buffer type: Uint8Array on one thread, SharedArrayBuffer for workers.
 */
export type ResizePass<B> = { src: B; dst: B; rows: number; weights: AxisWeights } & (
  | { axis: 'width'; width: number; channels: number; outWidth: number }
  | { axis: 'height'; rowLength: number }
);

/**
 * The passes that turn `pixels` into outWidth x outHeight, in order (width first, an axis whose
 * size does not change skipped), with `allocate` giving each pass's output buffer; `result` is
 * the buffer the last pass writes (`pixels` itself when nothing changes).
 */
export function planResize<B>(
  pixels: B,
  [width, height, channels]: [number, number, number],
  [outWidth, outHeight]: [number, number],
  allocate: (bytes: number) => B,
): { passes: ResizePass<B>[]; result: B } {
  const passes: ResizePass<B>[] = [];
  let current = pixels;
  if (outWidth !== width) {
    const dst = allocate(outWidth * height * channels);
    const weights = axisWeights(width, outWidth);
    passes.push({
      axis: 'width',
      src: current,
      dst,
      rows: height,
      weights,
      width,
      channels,
      outWidth,
    });
    current = dst;
  }
  if (outHeight !== height) {
    const dst = allocate(outWidth * outHeight * channels);
    const weights = axisWeights(height, outHeight);
    passes.push({
      axis: 'height',
      src: current,
      dst,
      rows: outHeight,
      weights,
      rowLength: outWidth * channels,
    });
    current = dst;
  }
  return { passes, result: current };
}

/** Runs output rows `rows` of one pass. */
export function resampleRows(pass: ResizePass<Uint8Array>, rows: RowRange): void {
  if (pass.axis === 'width') {
    const { src, dst, width, channels, outWidth, weights } = pass;
    resampleWidth(src, dst, width, channels, outWidth, weights, rows);
  } else {
    resampleHeight(pass.src, pass.dst, pass.rowLength, pass.weights, rows);
  }
}

/** Resizes interleaved uint8 pixels (`channels` per pixel) to outWidth x outHeight. */
export function resizeBicubicAntialiased(
  pixels: Uint8Array,
  width: number,
  height: number,
  channels: number,
  outWidth: number,
  outHeight: number,
): Uint8Array {
  const { passes, result } = planResize(
    pixels,
    [width, height, channels],
    [outWidth, outHeight],
    (bytes) => new Uint8Array(bytes),
  );
  for (const pass of passes) resampleRows(pass, { from: 0, to: pass.rows });
  return result;
}
