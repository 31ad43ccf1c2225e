/**
 * loadModel: a Hugging Face Qwen3-VL checkpoint directory -> built (or cached) ONNX graphs for
 * the requested precision -> onnxruntime sessions on the requested device -> LoadedModel.
 */
import { statSync } from 'node:fs';
import { freemem } from 'node:os';
import * as ort from 'onnxruntime-node';
import type { Qwen3VLConfig } from '../checkpoint/config';
import type { Device, GraphTarget, LoadModelOptions, LoadedModel, Precision } from '../contracts';
import { isEngineError } from '../errors';
import { GRAPH_FILES } from '../onnx/build-graphs';
import { DECODER_OUTPUTS } from '../onnx/decoder-graph';
import { CapturedTextDecoder } from './captured-decoder';
import type { CachedBuild } from './build-cache';
import { ensureModelBuild } from './model-build';
import { executionProviders, providerLoadError, resolveDevice } from './providers';
import { HandoverKvCache, HostKvCache, InPlaceKvCache, type CacheType } from './kv-cache';
import { createKvPadder, type KvPadder } from './kv-padder';
import { SESSION_CONFIG } from './session-config';
import { OnnxTextDecoder } from './text-decoder';
import { CPU_PREFILL_CHUNK } from './token-decoder';
import { OnnxVisionEncoder } from './vision-encoder';

export { DEFAULT_PRECISION } from './model-build';

export async function loadModel(
  modelDir: string,
  options: LoadModelOptions = {},
): Promise<LoadedModel> {
  const request = options.device ?? 'cpu';
  const { device, skipped } = await resolveDevice(request, options.webgpuOptions);
  if (device === 'cpu' && skipped.length) {
    options.onWarning?.(`no GPU provider loads here, running on the CPU (${skipped.join('; ')})`);
  }
  const { build, config, precision, target } = ensureModelBuild(modelDir, { ...options, device });
  const progress = options.onProgress ?? (() => {});
  const cacheType = kvCacheType(precision, target);
  if (build.captured) {
    const model = await loadCaptured(
      build.vision,
      build.captured,
      config,
      precision,
      cacheType,
      options,
    );
    return { ...model, buildDir: build.dir };
  }
  const load = async (on: Device): Promise<LoadedModel> => {
    const sessions = await createSessions(on, build, config, cacheType, progress, options);
    const model = makeModel(
      on,
      precision,
      target,
      config,
      cacheType,
      sessions,
      options.prefillChunk,
    );
    return { ...model, buildDir: build.dir };
  };
  try {
    return await load(device);
  } catch (error) {
    const wrapped =
      isEngineError(error) || device === 'cpu' ? error : providerLoadError(device, error);
    if (request !== 'auto' || device === 'cpu') throw wrapped;
    // The provider loaded a probe but not the model (say, too little GPU memory): auto still
    // runs, on the CPU with the GPU build already made (slower than a CPU build, no rebuild).
    options.onWarning?.(`${(wrapped as Error).message}; running on the CPU instead`);
    return load('cpu');
  }
}

/**
 * A graph-capture build: the vision tower on onnxruntime-node's WebGPU provider, the text
 * decoder on onnxruntime-web with the step captured (captured-decoder.ts). Image features pass
 * through the host between them, as they do in every build.
 */
async function loadCaptured(
  visionPath: string,
  graphs: NonNullable<CachedBuild['captured']>,
  config: Qwen3VLConfig,
  precision: Precision,
  cacheType: CacheType,
  options: LoadModelOptions,
): Promise<LoadedModel> {
  const progress = options.onProgress ?? (() => {});
  const { capacity, verifyRows } = options.graphCapture!;
  progress({ stage: 'load', item: 'vision', done: 0, total: 2 });
  const vision = await ort.InferenceSession.create(
    visionPath,
    baseSessionOptions('webgpu', options.webgpuOptions),
  );
  progress({ stage: 'load', item: 'decoder', done: 1, total: 2 });
  let decoder: CapturedTextDecoder;
  try {
    decoder = await CapturedTextDecoder.open(
      {
        promptForm: graphs.promptForm,
        step: graphs.step,
        verify: graphs.verify && verifyRows ? { path: graphs.verify, rows: verifyRows } : undefined,
        dataFile: `${GRAPH_FILES.promptForm}.data`,
      },
      config,
      capacity,
      cacheType,
      { prefillChunk: options.prefillChunk },
    );
  } catch (error) {
    await vision.release();
    throw isEngineError(error) ? error : providerLoadError('webgpu', error);
  }
  progress({ stage: 'load', item: 'decoder', done: 2, total: 2 });
  return {
    device: 'webgpu',
    precision,
    vision: new OnnxVisionEncoder(vision, config),
    decoder,
    contextLimit: capacity,
    async dispose() {
      decoder.reset();
      await vision.release();
      await decoder.dispose();
    },
  };
}

/** What every onnxruntime-node session of a model gets on `device`. */
function baseSessionOptions(
  device: Device,
  webgpuOptions: LoadModelOptions['webgpuOptions'],
): ort.InferenceSession.SessionOptions {
  return {
    executionProviders: executionProviders(device, webgpuOptions),
    graphOptimizationLevel: 'all',
    // Errors only: every GPU session warns that shape operators were placed on the CPU.
    logSeverityLevel: 3,
    extra: SESSION_CONFIG,
  };
}

interface Sessions {
  vision: ort.InferenceSession;
  decoder: ort.InferenceSession;
  /** The CPU int4 build's 8-bit decoder for prompts, where memory allows. */
  prefill?: ort.InferenceSession;
  /** WebGPU: pads the handed-over KV cache on the device. */
  kvPadder?: KvPadder;
}

/** GPU builds (fp16, and int4 with fp16 activations) keep K/V in fp16. */
export function kvCacheType(precision: Precision, target: GraphTarget): CacheType {
  const half = precision === 'fp16' || (precision === 'int4' && target === 'gpu');
  return half ? 'float16' : 'float32';
}

async function createSessions(
  device: Device,
  paths: { vision: string; decoder: string; prefill?: string },
  config: Qwen3VLConfig,
  cacheType: CacheType,
  progress: NonNullable<LoadModelOptions['onProgress']>,
  { profileDecoderTo, webgpuOptions, prefillDecoder, onWarning }: LoadModelOptions,
): Promise<Sessions> {
  const { vision: visionPath, decoder: decoderPath } = paths;
  const prefillPath = prefillDecoder === false ? undefined : paths.prefill;
  const total = prefillPath ? 3 : 2;
  const base = baseSessionOptions(device, webgpuOptions);
  progress({ stage: 'load', item: 'vision', done: 0, total });
  const vision = await ort.InferenceSession.create(visionPath, base);
  progress({ stage: 'load', item: 'decoder', done: 1, total });
  const decoderOptions: ort.InferenceSession.SessionOptions = { ...base };
  if (profileDecoderTo) {
    decoderOptions.enableProfiling = true;
    decoderOptions.profileFilePrefix = profileDecoderTo;
  }
  if (device === 'webgpu') {
    // Keep the KV cache on the GPU between steps; only logits come back to the host.
    //
    // What onnxruntime-node 1.30 allows (js/node/src of onnxruntime): a 'gpu-buffer' tensor is
    // WebGPU memory only, and JavaScript can neither create one nor upload into one; it can
    // only come out of a run (preferredOutputLocation) and be fed to a later run. Passed as a
    // fetch it is not written in place (see kv-cache.ts), so the cache cannot be one static
    // buffer. The CUDA provider takes no options beyond the device id (no CUDA graph) and
    // every CUDA input and output is a host tensor, so with CUDA the KV cache crosses PCIe
    // each run. Graph capture (session config 'ep.webgpuexecutionprovider.enableGraphCapture')
    // needs fixed shapes and every input on the device at a fixed address; the cache grows and
    // the step's small inputs (token id, rotary rows, seqlens) are host tensors, so it is off.
    // Nor can it set how many dispatches the provider records before each queue submit
    // (maxNumPendingDispatches, 16): the binding passes on only deviceId, preferredLayout,
    // validationMode, the buffer cache modes, enableRobustness and forceCpuNodeNames, and the
    // provider does not read session config entries. A step's 250 dispatches make 16 submits.
    decoderOptions.preferredOutputLocation = kvCacheOnDevice(config.text.numLayers);
  }
  let decoder: ort.InferenceSession | undefined;
  try {
    decoder = await ort.InferenceSession.create(decoderPath, decoderOptions);
    const kvPadder =
      device === 'webgpu' ? await createKvPadder(config.text, cacheType, base) : undefined;
    progress({ stage: 'load', item: 'decoder', done: 2, total });
    if (!prefillPath) return { vision, decoder, kvPadder };
    const prefill = await loadPrefillDecoder(prefillPath, base, prefillDecoder, onWarning);
    progress({ stage: 'load', item: 'prefill decoder', done: 3, total });
    return { vision, decoder, kvPadder, prefill };
  } catch (error) {
    await vision.release();
    await decoder?.release();
    throw error;
  }
}

/**
 * The prefill decoder's session, or undefined where it is left out (no memory for it) or does
 * not load: prompts then run on the int4 decoder, slower, and onWarning says why. Asked for
 * explicitly (true), a failure to load is an error.
 */
async function loadPrefillDecoder(
  path: string,
  base: ort.InferenceSession.SessionOptions,
  requested: boolean | undefined,
  onWarning: LoadModelOptions['onWarning'],
): Promise<ort.InferenceSession | undefined> {
  if (!wantPrefillDecoder(path, requested, onWarning)) return undefined;
  try {
    return await ort.InferenceSession.create(path, base);
  } catch (error) {
    if (requested) throw error;
    onWarning?.(
      `the 8-bit prefill decoder did not load (${(error as Error).message}); prompts run on the int4 decoder, several times slower`,
    );
    return undefined;
  }
}

/**
 * Whether to load the prefill decoder: asked for, or (by default) when the memory free now,
 * after the other graphs, holds twice its weights (the rest for activations and everything
 * else the machine runs). Left out, prompts run on the int4 decoder, slower.
 */
export function wantPrefillDecoder(
  path: string,
  requested: boolean | undefined,
  onWarning: LoadModelOptions['onWarning'],
  free = freemem(),
): boolean {
  if (requested !== undefined) return requested;
  const weights = statSync(`${path}.data`).size;
  if (free >= 2 * weights) return true;
  const gb = (n: number) => (n / 1e9).toFixed(1);
  onWarning?.(
    `the 8-bit prefill decoder (${gb(weights)} GB) is left out: ${gb(free)} GB of memory is free, ${gb(2 * weights)} GB would be needed; prompts run on the int4 decoder, several times slower`,
  );
  return false;
}

/** WebGPU decoder outputs that stay in GPU buffers: every layer's present key and value. */
export function kvCacheOnDevice(numLayers: number): Record<string, 'gpu-buffer'> {
  const onDevice: Record<string, 'gpu-buffer'> = {};
  for (let l = 0; l < numLayers; l++) {
    onDevice[DECODER_OUTPUTS.presentKey(l)] = 'gpu-buffer';
    onDevice[DECODER_OUTPUTS.presentValue(l)] = 'gpu-buffer';
  }
  return onDevice;
}

function makeModel(
  device: Device,
  precision: Precision,
  target: GraphTarget,
  config: Qwen3VLConfig,
  cacheType: CacheType,
  sessions: Sessions,
  prefillChunk: number | undefined,
): LoadedModel {
  // CPU build: host buffers the graph only reads; the host appends each run's new rows.
  // GPU build: each run's present handed to the next (on the device with WebGPU), or host
  // buffers bound in place (the GPU build run on the CPU).
  const cache =
    target === 'cpu'
      ? new HostKvCache(config.text, cacheType)
      : device === 'cpu'
        ? new InPlaceKvCache(config.text, cacheType)
        : new HandoverKvCache(config.text, cacheType, sessions.kvPadder);
  const decoder = new OnnxTextDecoder(sessions.decoder, config, cache, {
    prefillSession: sessions.prefill,
    prefillChunk: prefillChunk ?? (device === 'cpu' ? CPU_PREFILL_CHUNK : undefined),
  });
  return {
    device,
    precision,
    vision: new OnnxVisionEncoder(sessions.vision, config),
    decoder,
    async dispose() {
      decoder.reset();
      await sessions.vision.release();
      await sessions.decoder.release();
      await sessions.prefill?.release();
      await sessions.kvPadder?.release();
    },
  };
}
