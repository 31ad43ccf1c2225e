/**
 * onnxruntime-web's WebGPU build in Node, for the one thing onnxruntime-node 1.30 cannot do:
 * WebGPU graph capture (its binding rejects `enableGraphCapture`). onnxruntime-web's WebGPU
 * build is the same C++ provider compiled to WebAssembly; in Node it runs on Dawn's own binding
 * (the `webgpu` package, dawn.node). Both are pinned and optional: the engine's graph-capture
 * decoder (captured-decoder.ts) and the capture benchmark load them when asked to, and say how
 * to install them where they are missing (the extension's package does not ship them yet).
 * Two workarounds make them work together (found probing graph capture;
 * test/engine/graph-capture.test.ts guards both):
 * - dawn.node's queue.writeBuffer refuses views of a SharedArrayBuffer (the threaded
 *   WebAssembly memory): such writes go through a copy.
 * - onnxruntime-web registers a run's own GPU buffers at the start of the run and releases
 *   their handles at its end; a captured graph keeps the first run's handles, so a replay would
 *   bind released ones. keepRegistered holds them.
 */
import type * as Ort from 'onnxruntime-web';
import { EngineError } from '../errors';

/** The parts of WebGPU's API used here (the DOM library of TypeScript 5.9 has no WebGPU types). */
export interface GpuBuffer {
  size: number;
  destroy(): void;
  mapAsync(mode: number): Promise<void>;
  getMappedRange(): ArrayBuffer;
  unmap(): void;
}
interface GpuDevice {
  createBuffer(descriptor: { size: number; usage: number }): GpuBuffer;
  createCommandEncoder(): {
    copyBufferToBuffer(
      from: GpuBuffer,
      at: number,
      to: GpuBuffer,
      offset: number,
      size: number,
    ): void;
    finish(): unknown;
  };
  queue: {
    submit(commands: unknown[]): void;
    writeBuffer(buffer: GpuBuffer, offset: number, data: ArrayBufferView): void;
  };
}

/** WebGPU's GPUBufferUsage and GPUMapMode flags. */
const USAGE = { mapRead: 0x1, copySrc: 0x4, copyDst: 0x8, storage: 0x80 };
const MAP_READ = 0x1;

export type OrtWeb = typeof Ort;

let loaded: OrtWeb | undefined;

/** The pinned versions (package.json), which the workarounds here were checked against. */
export const ORT_WEB_PACKAGES = 'onnxruntime-web@1.30.0 webgpu@0.6.2';

/** onnxruntime-web on dawn.node, one WebAssembly thread, errors only in its log. */
export function loadOrtWeb(): OrtWeb {
  if (loaded) return loaded;
  const { create, globals } = requireOptional('webgpu') as {
    create(flags: string[]): unknown;
    globals: object;
  };
  const ort = requireOptional('onnxruntime-web/webgpu') as OrtWeb;
  Object.assign(globalThis, globals);
  // Dawn keeps shader-f16 off on NVIDIA's Vulkan driver unless this adapter toggle is on
  // (onnxruntime-node's own Dawn turns it on too); every fp16 kernel needs it.
  const gpu = create(['enable-dawn-features=vulkan_enable_f16_on_nvidia']);
  Object.defineProperty(globalThis, 'navigator', { value: { gpu } });
  copySharedWrites();
  loaded = ort;
  loaded.env.wasm.numThreads = 1;
  loaded.env.logLevel = 'error';
  return loaded;
}

/** Required by a variable name, so that bundlers leave them to be found at run time. */
function requireOptional(name: string): unknown {
  try {
    return require(name);
  } catch (error) {
    throw new EngineError(
      'device_unavailable',
      `WebGPU graph capture needs ${ORT_WEB_PACKAGES}, which do not load here (${(error as Error).message.split('\n')[0]}): install them beside design-to-code (npm install ${ORT_WEB_PACKAGES}), or run without graph capture`,
      { cause: error },
    );
  }
}

function copySharedWrites(): void {
  const proto = (globalThis as unknown as { GPUQueue: { prototype: GpuDevice['queue'] } }).GPUQueue
    .prototype;
  const write = proto.writeBuffer as (...args: unknown[]) => void;
  proto.writeBuffer = function (buffer, offset, data, ...rest: unknown[]) {
    if (!(data.buffer instanceof SharedArrayBuffer)) {
      return write.call(this, buffer, offset, data, ...rest);
    }
    const [dataOffset = 0, size] = rest as [number?, number?];
    const unit = (data as unknown as { BYTES_PER_ELEMENT?: number }).BYTES_PER_ELEMENT ?? 1;
    const bytes = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
    const start = dataOffset * unit;
    const end = size === undefined ? bytes.length : start + size * unit;
    return write.call(this, buffer, offset, bytes.slice(start, end));
  };
}

/**
 * The module never releases buffers it allocated itself: their registration count is NaN. The
 * given buffers get the same count, by catching the registration on the buffer object (kept
 * under a symbol, learned from one buffer the module allocated for a one-node graph).
 */
let registrationSymbol: symbol | undefined;
/** y = x + x on float16 [1, 4]: the smallest graph whose output the module allocates. */
const ADD_GRAPH =
  'CAkSDmRlc2lnbi10by1jb2RlOkoKGAoBeAoBeBIBeRoGbjBfQWRkIgNBZGQ6ABIEbWluaVoTCgF4Eg4KDAgKEggKAggBCgIIBGITCgF5Eg4KDAgKEggKAggBCgIIBEIECgAQFUIRCg1jb20ubWljcm9zb2Z0EAE=';

export async function keepRegistered(ort: OrtWeb, buffers: GpuBuffer[]): Promise<void> {
  if (!registrationSymbol) {
    const ownsBuffers = await ort.InferenceSession.create(Buffer.from(ADD_GRAPH, 'base64'), {
      executionProviders: ['webgpu'],
      preferredOutputLocation: 'gpu-buffer',
    });
    const x = new ort.Tensor('float16', new Uint16Array(4), [1, 4]);
    const { y } = await ownsBuffers.run({ x });
    registrationSymbol = Object.getOwnPropertySymbols(y.gpuBuffer)[0];
    await ownsBuffers.release();
    if (!registrationSymbol) throw new Error('onnxruntime-web keeps no registration on buffers');
  }
  for (const buffer of buffers) {
    let registration: unknown[] | undefined;
    Object.defineProperty(buffer, registrationSymbol, {
      configurable: true,
      get: () => registration,
      set: (value: unknown[] | undefined) => {
        registration = value && [value[0], NaN];
      },
    });
  }
}

const ELEMENT_BYTES = { float16: 2, float32: 4, int32: 4, int64: 8 } as const;
export type GpuDataType = keyof typeof ELEMENT_BYTES;

/** GPU buffers made into onnxruntime-web tensors, written and read by the host. */
export class GpuTensors {
  /** Staging buffers by size and slot. */
  private readonly staging = new Map<string, GpuBuffer>();
  private readonly created: GpuBuffer[] = [];

  private constructor(
    private readonly ort: OrtWeb,
    private readonly device: GpuDevice,
  ) {}

  /** onnxruntime-web's own device (it exists once a WebGPU session has been created). */
  static async of(ort: OrtWeb): Promise<GpuTensors> {
    return new GpuTensors(ort, (await ort.env.webgpu.device) as unknown as GpuDevice);
  }

  create(dataType: GpuDataType, dims: number[]): { tensor: Ort.Tensor; buffer: GpuBuffer } {
    const bytes = dims.reduce((a, b) => a * b, 1) * ELEMENT_BYTES[dataType];
    const buffer = this.device.createBuffer({
      size: Math.ceil(bytes / 16) * 16,
      usage: USAGE.storage | USAGE.copySrc | USAGE.copyDst,
    });
    this.created.push(buffer);
    const tensor = this.ort.Tensor.fromGpuBuffer(buffer as unknown as Ort.Tensor.GpuBufferType, {
      dataType,
      dims,
    });
    return { tensor, buffer };
  }

  /** Destroys every buffer made here (after the session that used them is released). */
  destroy(): void {
    for (const buffer of [...this.created, ...this.staging.values(), ...this.spare]) {
      buffer.destroy();
    }
    this.created.length = 0;
    this.staging.clear();
    this.spare.length = 0;
  }

  /** Copies `bytes` bytes between two buffers, in queue order with runs and writes. */
  copy(from: GpuBuffer, to: GpuBuffer, bytes: number): void {
    const encoder = this.device.createCommandEncoder();
    encoder.copyBufferToBuffer(from, 0, to, 0, Math.ceil(bytes / 16) * 16);
    this.device.queue.submit([encoder.finish()]);
  }

  /** Staging buffers of `readSoon`, free for reuse. */
  private readonly spare: GpuBuffer[] = [];

  /**
   * The first `bytes` (at most 16) bytes of `buffer` as they are once the work queued so far is
   * done: copied at once, in queue order, so the host can queue more before the value arrives.
   */
  async readSoon(buffer: GpuBuffer, bytes: number): Promise<ArrayBuffer> {
    const staging =
      this.spare.pop() ??
      this.device.createBuffer({ size: 16, usage: USAGE.mapRead | USAGE.copyDst });
    const encoder = this.device.createCommandEncoder();
    encoder.copyBufferToBuffer(buffer, 0, staging, 0, 16);
    this.device.queue.submit([encoder.finish()]);
    await staging.mapAsync(MAP_READ);
    const value = staging.getMappedRange().slice(0, bytes);
    staging.unmap();
    this.spare.push(staging);
    return value;
  }

  /** Writes `data` into `buffer` at byte `offset` (a multiple of 4), in queue order. */
  write(buffer: GpuBuffer, data: ArrayBufferView, offset = 0): void {
    this.device.queue.writeBuffer(buffer, offset, data);
  }

  /**
   * The buffers' contents (their first `bytes[i]` bytes), through one staging buffer and one map.
   * The copy is queued at once, in queue order with runs; reads outstanding at the same time
   * take different `slot`s.
   */
  async read(buffers: GpuBuffer[], bytes: number[], slot = 0): Promise<ArrayBuffer[]> {
    const offsets: number[] = [];
    let size = 0;
    for (const length of bytes) {
      offsets.push(size);
      size += Math.ceil(length / 16) * 16;
    }
    const key = `${size}/${slot}`;
    let staging = this.staging.get(key);
    if (!staging) {
      staging = this.device.createBuffer({ size, usage: USAGE.mapRead | USAGE.copyDst });
      this.staging.set(key, staging);
    }
    const encoder = this.device.createCommandEncoder();
    buffers.forEach((buffer, i) =>
      encoder.copyBufferToBuffer(buffer, 0, staging, offsets[i], Math.ceil(bytes[i] / 16) * 16),
    );
    this.device.queue.submit([encoder.finish()]);
    await staging.mapAsync(MAP_READ);
    const mapped = staging.getMappedRange();
    const out = bytes.map((length, i) => mapped.slice(offsets[i], offsets[i] + length));
    staging.unmap();
    return out;
  }
}
