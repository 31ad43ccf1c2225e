/**
 * `--max-image-pixels N|none`, shared by generate and serve: the most pixels an image keeps after
 * smart_resize (the engine's default is DEFAULT_MAX_IMAGE_PIXELS); "none" keeps the checkpoint's
 * own bound (16.7 MP for the published Qwen3-VL checkpoints).
 */
import { DEFAULT_MAX_IMAGE_PIXELS } from '../engine/preprocess/image-config';
import { UsageError } from './options';

export const MAX_IMAGE_PIXELS_HELP = `most pixels an image keeps after resizing, or "none" for the checkpoint's bound (default ${DEFAULT_MAX_IMAGE_PIXELS}, 1600 visual tokens)`;

/** Returns undefined when the option is absent; a bad value is a UsageError naming the option. */
export function parseMaxImagePixels(value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  if (value === 'none') return Infinity;
  const pixels = Number(value);
  if (!Number.isInteger(pixels) || pixels < 1) {
    throw new UsageError(`--max-image-pixels must be a positive integer or "none", not "${value}"`);
  }
  return pixels;
}
