/**
 * The image processor settings of a checkpoint: `preprocessor_config.json` (flat, what the
 * published Qwen3-VL checkpoints ship) or `processor_config.json` (transformers 5, nested under
 * `image_processor`). Pixel bounds come from `size.shortest_edge/longest_edge` (which are pixel
 * counts for Qwen, not edge lengths); `min_pixels/max_pixels`, when present, override them, as in
 * transformers (a user who narrows the bounds in preprocessor_config.json edits these keys).
 */
import { EngineError } from '../errors';
import { readCheckpointJson, type Json } from '../tokenizer/read-json';

export interface ImageProcessorConfig {
  patchSize: number;
  mergeSize: number;
  imageMean: [number, number, number];
  imageStd: [number, number, number];
  rescaleFactor: number;
  minPixels: number;
  maxPixels: number;
}

export function readImageProcessorConfig(modelDir: string): ImageProcessorConfig {
  const flat = readCheckpointJson(modelDir, 'preprocessor_config.json', true);
  if (flat) return parseImageProcessorConfig(flat, 'preprocessor_config.json');
  const nested = readCheckpointJson(modelDir, 'processor_config.json', true);
  const imageProcessor = nested?.image_processor;
  if (imageProcessor && typeof imageProcessor === 'object') {
    return parseImageProcessorConfig(imageProcessor as Json, 'processor_config.json');
  }
  throw new EngineError(
    'model_not_found',
    `${modelDir} has no image processor settings: expected preprocessor_config.json or processor_config.json with an "image_processor" entry`,
  );
}

export function parseImageProcessorConfig(raw: Json, source: string): ImageProcessorConfig {
  const size = (raw.size ?? {}) as Json;
  const config: ImageProcessorConfig = {
    patchSize: numberOr(raw.patch_size, 16),
    mergeSize: numberOr(raw.merge_size, 2),
    imageMean: triple(raw.image_mean, [0.5, 0.5, 0.5], 'image_mean', source),
    imageStd: triple(raw.image_std, [0.5, 0.5, 0.5], 'image_std', source),
    rescaleFactor: numberOr(raw.rescale_factor, 1 / 255),
    minPixels: numberOr(raw.min_pixels ?? size.shortest_edge, 56 * 56),
    maxPixels: numberOr(raw.max_pixels ?? size.longest_edge, 28 * 28 * 1280),
  };
  if (config.minPixels > config.maxPixels) {
    throw new EngineError(
      'bad_checkpoint',
      `${source}: the minimum pixel count ${config.minPixels} exceeds the maximum ${config.maxPixels}`,
    );
  }
  return config;
}

/**
 * The engine's default cap on an image's pixels after smart_resize: 1600 merged visual tokens
 * (1600 * 32 * 32 = 1,638,400 pixels, about 1280x1280). The published checkpoints allow 16.7 MP,
 * i.e. up to 16384 visual tokens: a 4K screenshot would become 8160 tokens and a vision-tower
 * attention over 32640 patches, minutes of CPU time and most of a useful context. At 1.6 MP a
 * 1920x1080 screenshot is scaled by about 0.89 (text stays legible) and costs ~1600 tokens.
 */
export const DEFAULT_MAX_IMAGE_PIXELS = 1600 * 32 * 32;

/** The checkpoint's settings with max pixels lowered to `maxImagePixels` (never raised). */
export function capImagePixels(
  config: ImageProcessorConfig,
  maxImagePixels: number = DEFAULT_MAX_IMAGE_PIXELS,
): ImageProcessorConfig {
  const factor = config.patchSize * config.mergeSize;
  const minimum = Math.max(config.minPixels, factor * factor);
  // Written so that NaN fails too.
  if (!(maxImagePixels >= minimum)) {
    throw new EngineError(
      'bad_request',
      `maxImagePixels ${maxImagePixels} is below the checkpoint's minimum of ${minimum} pixels per image`,
    );
  }
  return { ...config, maxPixels: Math.min(config.maxPixels, maxImagePixels) };
}

function numberOr(value: unknown, fallback: number): number {
  return typeof value === 'number' && Number.isFinite(value) ? value : fallback;
}

function triple(
  value: unknown,
  fallback: [number, number, number],
  key: string,
  source: string,
): [number, number, number] {
  if (value === undefined) return fallback;
  if (typeof value === 'number') return [value, value, value];
  if (Array.isArray(value) && value.length === 3 && value.every((v) => typeof v === 'number')) {
    return value as [number, number, number];
  }
  throw new EngineError('bad_checkpoint', `${source}: "${key}" must be 3 numbers`);
}
