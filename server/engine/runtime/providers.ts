/**
 * Execution providers: turns a device request into onnxruntime session options, and a provider
 * that cannot load into EngineError('device_unavailable') naming what is missing.
 */
import { existsSync, readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import * as ort from 'onnxruntime-node';
import type { Device, DeviceRequest } from '../contracts';
import { EngineError } from '../errors';
import { buildKvPadGraph } from '../onnx/kv-pad-graph';
import { SESSION_CONFIG } from './session-config';

/**
 * Tried in this order by `auto`; cpu always loads. WebGPU comes before Core ML because Core ML
 * runs none of the contrib operators these graphs use (they would fall back to the CPU).
 */
const AUTO_ORDER: Device[] = ['cuda', 'dml', 'webgpu', 'coreml', 'cpu'];

const PLATFORM: Partial<Record<Device, NodeJS.Platform[]>> = {
  dml: ['win32'],
  coreml: ['darwin'],
  cuda: ['win32', 'linux'],
};

export function executionProviders(
  device: Device,
  webgpuOptions: Record<string, string> = {},
): ort.InferenceSession.ExecutionProviderConfig[] {
  switch (device) {
    case 'cpu':
      return ['cpu'];
    case 'webgpu':
      return [{ name: 'webgpu', ...webgpuOptions }];
    case 'cuda':
      return [{ name: 'cuda' }];
    case 'dml':
      return [{ name: 'dml' }];
    case 'coreml':
      return [{ name: 'coreml' }];
  }
}

/** Which devices this onnxruntime-node build could run, before trying to load them. */
export function candidateDevices(request: DeviceRequest): Device[] {
  if (request !== 'auto') return [request];
  return AUTO_ORDER.filter((d) => platformAllows(d) && (d !== 'webgpu' || mayHaveGpu()));
}

/**
 * On Linux, WebGPU also loads over Mesa's software Vulkan driver (lavapipe), far slower than
 * the CPU provider; `auto` only tries it when the kernel exposes a GPU (a DRM render node,
 * an NVIDIA device, or WSL's GPU). An explicit --device webgpu is always tried.
 */
export function mayHaveGpu(devDir = '/dev'): boolean {
  if (process.platform !== 'linux') return true;
  try {
    if (readdirSync(join(devDir, 'dri')).some((name) => name.startsWith('renderD'))) return true;
  } catch {
    // no /dev/dri
  }
  return ['nvidia0', 'dxg'].some((name) => existsSync(join(devDir, name)));
}

/** What `auto` settled on, and why each device before it was passed over. */
export interface ResolvedDevice {
  device: Device;
  skipped: string[];
}

/**
 * The device a request runs on, decided before anything is built, since the build depends on
 * it: an explicit device as asked; `auto` the first candidate whose provider loads here,
 * else the CPU. A probe is a session of one small fp16 graph (about 0.15 s for WebGPU).
 */
export async function resolveDevice(
  request: DeviceRequest,
  webgpuOptions?: Record<string, string>,
): Promise<ResolvedDevice> {
  if (request !== 'auto') return { device: request, skipped: [] };
  const skipped: string[] = [];
  for (const device of candidateDevices('auto')) {
    try {
      await probeDevice(device, webgpuOptions);
      return { device, skipped };
    } catch (error) {
      skipped.push(`${device}: ${(error as Error).message}`);
    }
  }
  return { device: 'cpu', skipped };
}

/**
 * Throws device_unavailable unless `device`'s provider creates a session here. The first WebGPU
 * session of a process fixes the device-wide options, so the probe takes the model's.
 */
export async function probeDevice(
  device: Device,
  webgpuOptions?: Record<string, string>,
): Promise<void> {
  assertDeviceAvailable(device);
  if (device === 'cpu') return;
  let session: ort.InferenceSession;
  try {
    // Any small graph with fp16 tensors will do; the KV padding graph is one.
    session = await ort.InferenceSession.create(
      buildKvPadGraph({ count: 1, type: 'float16', kvHeads: 1, headDim: 8 }),
      {
        executionProviders: executionProviders(device, webgpuOptions),
        logSeverityLevel: 3,
        extra: SESSION_CONFIG,
      },
    );
  } catch (error) {
    throw providerLoadError(device, error);
  }
  await session.release();
}

function platformAllows(device: Device): boolean {
  const platforms = PLATFORM[device];
  return !platforms || platforms.includes(process.platform);
}

/**
 * Checks the request against what the installed onnxruntime-node offers, so a provider that is
 * not there fails with a message that says how to get it.
 */
export function assertDeviceAvailable(device: Device): void {
  if (device === 'cpu') return;
  if (!platformAllows(device)) {
    throw new EngineError(
      'device_unavailable',
      `The ${device} execution provider is not available on ${process.platform} (it needs ${PLATFORM[device]!.join(' or ')}). Use --device cpu or auto.`,
    );
  }
  const backends = ort.listSupportedBackends();
  const entry = backends.find((b) => b.name === device);
  if (!entry) {
    throw new EngineError(
      'device_unavailable',
      `This onnxruntime-node build has no ${device} execution provider (it offers: ${backends.map((b) => b.name).join(', ')}). Use --device cpu or auto.`,
    );
  }
  if (device === 'cuda' && !entry.bundled) {
    // onnxruntime-node downloads its CUDA provider libraries in an install script, which this
    // project skips; without them the provider cannot load.
    const lib = 'libonnxruntime_providers_cuda.so';
    if (!cudaProviderInstalled(lib)) {
      throw new EngineError(
        'device_unavailable',
        `CUDA execution provider libraries are not installed (${lib} is missing next to onnxruntime-node's binding; its install script was skipped). Install them with "ONNXRUNTIME_NODE_INSTALL=cuda12 node node_modules/onnxruntime-node/script/install", make sure the CUDA 12 and cuDNN 9 runtime libraries are on the library path, or use --device cpu / webgpu.`,
      );
    }
  }
}

function cudaProviderInstalled(lib: string): boolean {
  try {
    const root = join(dirname(require.resolve('onnxruntime-node')), '..', 'bin');
    const stack = [root];
    while (stack.length) {
      const dir = stack.pop()!;
      if (!existsSync(dir)) continue;
      for (const entry of readdirSync(dir, { withFileTypes: true })) {
        if (entry.isDirectory()) stack.push(join(dir, entry.name));
        else if (entry.name === lib) return true;
      }
    }
  } catch {
    return false;
  }
  return false;
}

const NEEDS: Record<Device, string> = {
  cpu: '',
  webgpu: 'a GPU whose driver offers Vulkan (Linux), Metal (macOS) or Direct3D 12 (Windows)',
  cuda: 'an NVIDIA GPU with the CUDA 12 and cuDNN 9 runtime libraries',
  dml: 'Windows with a DirectX 12 GPU',
  coreml: 'macOS with Core ML',
};

/** What onnxruntime's WebGPU provider says when a kernel needs 16-bit floats the GPU lacks. */
const NO_F16 = /requires f16 but the device does not support it/;

/** Wraps a session-creation failure on a non-CPU device as device_unavailable. */
export function providerLoadError(device: Device, error: unknown): EngineError {
  const message = (error instanceof Error ? error.message : String(error)).split('\n')[0];
  // The int4 and fp16 builds compute in fp16 on GPUs; fp32 runs where the adapter has no f16.
  const advice = NO_F16.test(message)
    ? `This GPU's WebGPU adapter offers no 16-bit floats (shader-f16), which the int4 and fp16 builds compute in: set the precision to fp32 (designToCode.precision, --precision fp32), or use --device cpu or auto.`
    : 'Use --device cpu or auto.';
  return new EngineError(
    'device_unavailable',
    `The ${device} execution provider failed to load (it needs ${NEEDS[device]}): ${message}. ${advice}`,
    { cause: error },
  );
}
