/**
 * Qwen2-VL's `smart_resize` (transformers v5): the target size is a multiple of `factor` on both
 * sides with the pixel count inside [minPixels, maxPixels], keeping the aspect ratio close.
 */
import { EngineError } from '../errors';

/** Python's round(): halves go to the even neighbour (JavaScript's Math.round goes up). */
export function roundHalfToEven(x: number): number {
  const floor = Math.floor(x);
  const diff = x - floor;
  if (diff > 0.5) return floor + 1;
  if (diff < 0.5) return floor;
  return floor % 2 === 0 ? floor : floor + 1;
}

export const MAX_ASPECT_RATIO = 200;

export function smartResize(
  height: number,
  width: number,
  factor: number,
  minPixels: number,
  maxPixels: number,
): { height: number; width: number } {
  if (Math.max(height, width) / Math.min(height, width) > MAX_ASPECT_RATIO) {
    throw new EngineError(
      'bad_image',
      `The image is ${width}x${height}: its aspect ratio must be below ${MAX_ASPECT_RATIO}:1`,
    );
  }
  let hBar = roundHalfToEven(height / factor) * factor;
  let wBar = roundHalfToEven(width / factor) * factor;
  if (hBar * wBar > maxPixels) {
    const beta = Math.sqrt((height * width) / maxPixels);
    hBar = Math.max(factor, Math.floor(height / beta / factor) * factor);
    wBar = Math.max(factor, Math.floor(width / beta / factor) * factor);
  } else if (hBar * wBar < minPixels) {
    const beta = Math.sqrt(minPixels / (height * width));
    hBar = Math.ceil((height * beta) / factor) * factor;
    wBar = Math.ceil((width * beta) / factor) * factor;
  }
  return { height: hBar, width: wBar };
}
