/**
 * One image, bytes in, `pixel_values` + grid out: decode, smart_resize, antialiased bicubic
 * (on worker threads where the image is large), normalize, patchify (spec §1).
 */
import { decodeImage, DEFAULT_IMAGE_LIMITS, type ImageLimits } from './decode-image';
import type { ImageProcessorConfig } from './image-config';
import { sharedResizeWorkers } from './parallel-resize';
import { patchify, type PatchGrid } from './patchify';
import { smartResize } from './smart-resize';

export interface PreprocessedImage extends PatchGrid {
  /** Size of the decoded image, before resizing. */
  originalSize: { width: number; height: number };
  /** Number of `<|image_pad|>` tokens this image becomes. */
  tokens: number;
}

export async function preprocessImage(
  bytes: Uint8Array,
  config: ImageProcessorConfig,
  limits: ImageLimits = DEFAULT_IMAGE_LIMITS,
): Promise<PreprocessedImage> {
  const image = await decodeImage(bytes, limits);
  const factor = config.patchSize * config.mergeSize;
  const target = smartResize(image.height, image.width, factor, config.minPixels, config.maxPixels);
  const resized = await sharedResizeWorkers().resize(
    image.data,
    image.width,
    image.height,
    3,
    target.width,
    target.height,
  );
  const grid = patchify(resized, target.width, target.height, config);
  const [t, h, w] = grid.gridThw;
  return {
    ...grid,
    originalSize: { width: image.width, height: image.height },
    tokens: (t * h * w) / (config.mergeSize * config.mergeSize),
  };
}
