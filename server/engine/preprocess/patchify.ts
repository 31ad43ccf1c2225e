/**
 * Turns a resized RGB image into the vision tower's `pixel_values`: rescale and normalize in
 * float32 and flatten patches in 2x2 merge-block order (spec §1.6): row n = merge window
 * (row-major) * merge^2 + position inside the window, column k = channel * P*P + py * P + px.
 *
 * One frame per patch. Qwen-VL's processor repeats a still image to fill the temporal patch
 * (T = 2 frames, column channel * T*P*P + t * P*P + ...); the patch embedding is linear, so the
 * vision graph sums its kernel over those equal frames instead (vision-graph.ts), and the rows
 * here are half as long: half the writes, and half the bytes sent to a GPU.
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
  const { patchSize: P, mergeSize: M } = config;
  const gh = height / P;
  const gw = width / P;
  const mh = gh / M;
  const mw = gw / M;
  const luts = normalizationTables(config);
  const sliceLength = P * P;
  const rowLength = 3 * sliceLength;
  const out = new Float32Array(gh * gw * rowLength);
  let n = 0;
  for (let bh = 0; bh < mh; bh++) {
    for (let bw = 0; bw < mw; bw++) {
      for (let ir = 0; ir < M; ir++) {
        for (let ic = 0; ic < M; ic++) {
          const y0 = (bh * M + ir) * P;
          const x0 = (bw * M + ic) * P;
          for (let ch = 0; ch < 3; ch++) {
            const lut = luts[ch];
            let k = n * rowLength + ch * sliceLength;
            for (let py = 0; py < P; py++) {
              let src = ((y0 + py) * width + x0) * 3 + ch;
              for (let px = 0; px < P; px++, src += 3) out[k++] = lut[rgb[src]];
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
 * (u8 * rescale - mean) / std per channel as a 256-entry float32 table. Fused like
 * transformers: mean and std are scaled by 1/rescale and applied to the u8 value, which with
 * the usual rescale 1/255 and mean = std = 0.5 is (u8 - 127.5) / 127.5.
 */
function normalizationTables(config: ImageProcessorConfig): Float32Array[] {
  return [0, 1, 2].map((ch) => {
    const mean = Math.fround(config.imageMean[ch] / config.rescaleFactor);
    const std = Math.fround(config.imageStd[ch] / config.rescaleFactor);
    const lut = new Float32Array(256);
    for (let v = 0; v < 256; v++) lut[v] = Math.fround(v - mean) / std;
    return lut;
  });
}
