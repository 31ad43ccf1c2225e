/**
 * The build step of loading a model: a checkpoint directory -> its ONNX graphs for a precision
 * and device, built into the cache (or found there). loadModel runs it in-process; the `build`
 * command runs the same step in a child process so that a server stays responsive meanwhile.
 */
import { mkdirSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { type Qwen3VLConfig, readModelConfig } from '../checkpoint/config';
import { SafetensorsCheckpoint } from '../checkpoint/safetensors';
import { checkpointSource } from '../checkpoint/weights';
import type { Device, GraphTarget, LoadModelOptions, Precision } from '../contracts';
import { EngineError } from '../errors';
import { type GraphCapture, PART_LABELS, buildGraphs, buildVariant } from '../onnx/build-graphs';
import { buildKey, type CachedBuild, defaultCacheDir, ensureBuild } from './build-cache';
import { assertDeviceAvailable } from './providers';

const PRECISIONS: Precision[] = ['fp32', 'fp16', 'int4'];
export const DEFAULT_PRECISION: Precision = 'int4';

export interface ModelBuildOptions extends Pick<
  LoadModelOptions,
  'target' | 'precision' | 'cacheDir' | 'onProgress' | 'graphCapture'
> {
  /** The device it will run on (`auto` resolved first: see resolveDevice). Default cpu. */
  device?: Device;
}

export interface ModelBuild {
  build: CachedBuild;
  config: Qwen3VLConfig;
  precision: Precision;
  target: GraphTarget;
}

/** Graph capture: WebGPU only, the GPU build, a cache of at least 16 positions. */
function assertCaptureOptions(
  device: Device,
  target: GraphTarget,
  { capacity, verifyRows }: GraphCapture,
): void {
  if (device !== 'webgpu' || target !== 'gpu') {
    throw new EngineError(
      'bad_request',
      `graph capture runs on WebGPU only, with the GPU build, and the model was to run on ${device}${target === 'gpu' ? '' : ' with the CPU build'}: use --device webgpu, or leave graph capture off`,
    );
  }
  if (!Number.isInteger(capacity) || capacity < 16) {
    throw new EngineError(
      'bad_request',
      `the graph-capture cache capacity must be a whole number of positions, at least 16 (got ${capacity})`,
    );
  }
  if (
    verifyRows !== undefined &&
    !(Number.isInteger(verifyRows) && verifyRows >= 2 && verifyRows <= Math.min(64, capacity))
  ) {
    throw new EngineError(
      'bad_request',
      `a captured verification run takes 2 to 64 tokens, at most the cache capacity (got ${verifyRows})`,
    );
  }
}

/** Builds (or finds) the cached ONNX graphs of `modelDir`; synchronous for minutes on a miss. */
export function ensureModelBuild(modelDir: string, options: ModelBuildOptions = {}): ModelBuild {
  // int4 weights (MatMulNBits) are the default on every device: a quarter of fp16's weight
  // traffic per token; fp16 and fp32 (the reference) stay available.
  const precision = options.precision ?? DEFAULT_PRECISION;
  if (!PRECISIONS.includes(precision)) {
    throw new EngineError(
      'bad_request',
      `precision must be one of ${PRECISIONS.join(', ')}, got ${JSON.stringify(precision)}`,
    );
  }
  const device = options.device ?? 'cpu';
  // Fail on a device that cannot load before spending minutes on a build.
  assertDeviceAvailable(device);
  // A GPU build for any device but the CPU; it also runs on the CPU, slower than the CPU build.
  const target: GraphTarget = options.target ?? (device === 'cpu' ? 'cpu' : 'gpu');
  const capture = options.graphCapture;
  if (capture) assertCaptureOptions(device, target, capture);
  const progress = options.onProgress ?? (() => {});
  const config = readModelConfig(modelDir);
  const checkpoint = SafetensorsCheckpoint.open(modelDir);
  const source = checkpointSource(checkpoint);

  const cacheDir = options.cacheDir ?? defaultCacheDir();
  try {
    mkdirSync(cacheDir, { recursive: true });
  } catch (error) {
    throw new EngineError(
      'internal',
      `Cannot create the ONNX cache directory ${cacheDir}: ${(error as Error).message}. Set DESIGN_TO_CODE_CACHE to a writable directory.`,
      { cause: error },
    );
  }
  const variant = buildVariant(precision, target, capture);
  const key = buildKey(
    readFileSync(join(modelDir, 'config.json'), 'utf8'),
    checkpoint.shards,
    variant,
  );
  // A dry run sizes the build (for the free-space check) without reading any weight.
  const dry = buildGraphs(config, source, precision, { sourceName: modelDir, target, capture });
  const estimated = Object.values(dry.dataBytes).reduce((a, b) => a + b, 0);
  const build = ensureBuild(
    cacheDir,
    key,
    variant,
    estimated,
    (dir) => {
      buildGraphs(config, source, precision, {
        outDir: dir,
        sourceName: modelDir,
        target,
        capture,
        // item: the graph being built; done/total: its checkpoint tensors converted so far.
        onProgress: (part, done, total) =>
          progress({ stage: 'build', item: PART_LABELS[part], done, total }),
      });
    },
    resolve(modelDir),
  );
  return { build, config, precision, target };
}
