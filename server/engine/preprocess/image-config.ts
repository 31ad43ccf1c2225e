/**
 * The image processor settings of a checkpoint: `preprocessor_config.json` (flat, what the
 * published Qwen3-VL checkpoints ship) or `processor_config.json` (transformers 5, nested under
 * `image_processor`). Pixel bounds come from `size.shortest_edge/longest_edge` (which are pixel
 * counts for Qwen, not edge lengths) or the older `min_pixels/max_pixels`.
 */
import { EngineError } from '../errors';
import { readCheckpointJson, type Json } from '../tokenizer/read-json';

export interface ImageProcessorConfig {
  patchSize: number;
  temporalPatchSize: number;
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
    temporalPatchSize: numberOr(raw.temporal_patch_size, 2),
    mergeSize: numberOr(raw.merge_size, 2),
    imageMean: triple(raw.image_mean, [0.5, 0.5, 0.5], 'image_mean', source),
    imageStd: triple(raw.image_std, [0.5, 0.5, 0.5], 'image_std', source),
    rescaleFactor: numberOr(raw.rescale_factor, 1 / 255),
    minPixels: numberOr(size.shortest_edge ?? raw.min_pixels, 56 * 56),
    maxPixels: numberOr(size.longest_edge ?? raw.max_pixels, 28 * 28 * 1280),
  };
  if (config.minPixels > config.maxPixels) {
    throw new EngineError(
      'bad_checkpoint',
      `${source}: the minimum pixel count ${config.minPixels} exceeds the maximum ${config.maxPixels}`,
    );
  }
  return config;
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
