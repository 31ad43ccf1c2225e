/**
 * The resize's passes sweep several rows or channels at once for speed; this pins them to the
 * plain per-pixel sum they stand for (same fixed-point weights, width pass first, a rounded
 * uint8 image between the passes). Golden tests cover the exactness against PyTorch, but their
 * images only need up to five taps; these sizes reach thirteen.
 */
import assert from 'node:assert/strict';
import { axisWeights, resizeBicubicAntialiased } from '../../server/engine/preprocess/bicubic';

function toByte(acc: number, precision: number): number {
  const v = acc >> precision;
  return v < 0 ? 0 : v > 255 ? 255 : v;
}

/** One axis, one output value at a time: out[o] = round(sum_j w[o][j] * in[start[o] + j]). */
function naiveAxis(
  read: (i: number) => number,
  inSize: number,
  outSize: number,
  write: (o: number, value: number) => void,
): void {
  const { start, size, weights, maxTaps, precision } = axisWeights(inSize, outSize);
  const half = precision > 0 ? 1 << (precision - 1) : 0;
  for (let o = 0; o < outSize; o++) {
    let acc = half;
    for (let j = 0; j < size[o]; j++) acc += read(start[o] + j) * weights[o * maxTaps + j];
    write(o, toByte(acc, precision));
  }
}

function naiveResize(src: Uint8Array, w: number, h: number, c: number, ow: number, oh: number) {
  let mid = src;
  if (ow !== w) {
    mid = new Uint8Array(ow * h * c);
    for (let y = 0; y < h; y++) {
      for (let ch = 0; ch < c; ch++) {
        naiveAxis(
          (x) => src[(y * w + x) * c + ch],
          w,
          ow,
          (x, v) => (mid[(y * ow + x) * c + ch] = v),
        );
      }
    }
  }
  if (oh === h) return mid;
  const out = new Uint8Array(ow * oh * c);
  for (let i = 0; i < ow * c; i++) {
    naiveAxis(
      (y) => mid[y * ow * c + i],
      h,
      oh,
      (y, v) => (out[y * ow * c + i] = v),
    );
  }
  return out;
}

describe('bicubic resize sweeps', () => {
  let seed = 12345;
  const randomImage = (n: number) => {
    const out = new Uint8Array(n);
    for (let i = 0; i < n; i++) {
      seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
      out[i] = seed >>> 24;
    }
    return out;
  };
  const cases: [number, number, number, number, number][] = [
    // width, height, channels, out width, out height
    [96, 72, 3, 96, 75], // height only, slight upscale (4-5 taps)
    [97, 60, 3, 101, 60], // width only
    [120, 90, 3, 40, 30], // 3x down: 13 taps, three sweeps
    [90, 64, 3, 45, 25], // 2x and 2.56x down: 9 and 11 taps
    [20, 14, 3, 64, 48], // upscale both axes
    [33, 17, 1, 7, 64], // one channel, down one way and up the other
    [5, 9, 4, 1, 1], // four channels, everything into one pixel
  ];
  for (const [w, h, c, ow, oh] of cases) {
    it(`${w}x${h}x${c} -> ${ow}x${oh} equals the per-pixel sum`, () => {
      const src = randomImage(w * h * c);
      assert.deepEqual(
        resizeBicubicAntialiased(src, w, h, c, ow, oh),
        naiveResize(src, w, h, c, ow, oh),
      );
    });
  }
});
