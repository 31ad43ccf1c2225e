/**
 * Turns a resized RGB image into Qwen-VL `pixel_values`: rescale and normalize in float32,
 * repeat the frame to fill the temporal patch, and flatten patches in 2x2 merge-block order
 * (spec §1.6): row n = merge window (row-major) * merge^2 + position inside the window,
 * column k = channel * (T*P*P) + t * P*P + py * P + px.
 */
import type { ImageProcessorConfig } from './image-config';

export interface PatchGrid {
  pixelValues: Float32Array;
  /** [grid_t, grid_h, grid_w] in patches. */
  gridThw: [number, number, number];
}

export function patchify(
  rgb: Uint8Array,
  width: number,
  height: number,
  config: ImageProcessorConfig,
): PatchGrid {
  const { patchSize: P, temporalPatchSize: T, mergeSize: M } = config;
  const gh = height / P;
  const gw = width / P;
  const mh = gh / M;
  const mw = gw / M;
  const normalized = normalizePlanes(rgb, width, height, config);
  const rowLength = 3 * T * P * P;
  const out = new Float32Array(gh * gw * rowLength);
  let n = 0;
  for (let bh = 0; bh < mh; bh++) {
    for (let bw = 0; bw < mw; bw++) {
      for (let ir = 0; ir < M; ir++) {
        for (let ic = 0; ic < M; ic++) {
          const y0 = (bh * M + ir) * P;
          const x0 = (bw * M + ic) * P;
          const rowBase = n * rowLength;
          for (let ch = 0; ch < 3; ch++) {
            const plane = normalized[ch];
            for (let t = 0; t < T; t++) {
              // Every temporal slice is the same still frame.
              let k = rowBase + ch * T * P * P + t * P * P;
              for (let py = 0; py < P; py++) {
                const src = (y0 + py) * width + x0;
                for (let px = 0; px < P; px++) out[k++] = plane[src + px];
              }
            }
          }
          n++;
        }
      }
    }
  }
  return { pixelValues: out, gridThw: [1, gh, gw] };
}

/**
 * (u8 * rescale - mean) / std per channel, as three float32 planes. With the usual
 * rescale 1/255 and mean = std = 0.5 this is the fused torchvision form (u8 - 127.5) / 127.5.
 */
function normalizePlanes(
  rgb: Uint8Array,
  width: number,
  height: number,
  config: ImageProcessorConfig,
): Float32Array[] {
  const planes = [0, 1, 2].map(() => new Float32Array(width * height));
  const table = [0, 1, 2].map((ch) => {
    // Fused like transformers: mean and std are scaled up by 1/rescale, then applied to u8.
    const mean = Math.fround(config.imageMean[ch] / config.rescaleFactor);
    const std = Math.fround(config.imageStd[ch] / config.rescaleFactor);
    const lut = new Float32Array(256);
    for (let v = 0; v < 256; v++) lut[v] = Math.fround(v - mean) / std;
    return lut;
  });
  for (let i = 0, p = 0; i < width * height; i++, p += 3) {
    planes[0][i] = table[0][rgb[p]];
    planes[1][i] = table[1][rgb[p + 1]];
    planes[2][i] = table[2][rgb[p + 2]];
  }
  return planes;
}
