/**
 * A decode step's int4 matrix multiplies alone: one graph of MatMulNBits nodes with the model's
 * shapes (fused q/k/v, o, fused gate/up, down per layer, then the LM head), in the engine's
 * format (block 32, zero points, accuracy_level 4; fp32 activations and scales on the CPU, fp16
 * on WebGPU), random weights and nothing else. Timed in the benchmark's own process, it is what
 * onnxruntime's int4 kernel does on this machine: the ceiling of a full decode step, beside the
 * memory roofline. On WebGPU it also counts the cost of dispatching one kernel per matrix
 * (4 a layer and the LM head), which is what bounds a small model's step there.
 */
import { randomFillSync } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import * as ort from 'onnxruntime-node';
import { type TextConfig, parseModelConfig } from '../../server/engine/checkpoint/config';
import { OPSETS } from '../../server/engine/onnx/build-graphs';
import { FileDataSink } from '../../server/engine/onnx/external-data';
import { float32ToFloat16Bits } from '../../server/engine/onnx/float16';
import { DataType, GraphBuilder, attr } from '../../server/engine/onnx/graph-builder';
import { INT4_BLOCK_SIZE } from '../../server/engine/onnx/quantize-int4';
import { SESSION_CONFIG } from '../../server/engine/runtime/session-config';

/** Half-precision bits of the scales and the activations. */
const FLOAT16_1_64 = float32ToFloat16Bits(1 / 64);
const FLOAT16_0_1 = float32ToFloat16Bits(0.1);

export interface KernelCeiling {
  /** Median ms of one pass over every matrix with onnxruntime's default threads, and one (CPU). */
  allThreadsMs: number;
  oneThreadMs?: number;
  /** Bytes of int4 weights, scales and zero points one pass reads. */
  bytes: number;
}

export type KernelDevice = 'cpu' | 'webgpu';

/** How the matrices are stored: the engine's by default (blocks of 32, zero points, level 4). */
export interface KernelFormat {
  blockSize: number;
  zeroPoints: boolean;
  /** MatMulNBits accuracy_level: 4 quantises activations to 8 bits, 0 computes in floats. */
  accuracyLevel: number;
}

export const ENGINE_KERNEL_FORMAT: KernelFormat = {
  blockSize: INT4_BLOCK_SIZE,
  zeroPoints: true,
  accuracyLevel: 4,
};

/** BLOCK:zp|sym:LEVEL, e.g. 32:zp:4 (the engine's CPU int4) or 32:sym:4 (its GPU int4). */
export function parseKernelFormat(spec: string): KernelFormat {
  const [block, zero, level, extra] = spec.split(':');
  if (!['zp', 'sym'].includes(zero) || !(Number(block) > 0) || !(Number(level) >= 0) || extra) {
    throw new Error(`a format is BLOCK:zp|sym:LEVEL, e.g. 32:zp:4, not ${spec}`);
  }
  return { blockSize: Number(block), zeroPoints: zero === 'zp', accuracyLevel: Number(level) };
}

/** The repository, or $BENCH_ROOT (the GPU bundle's copy of its fixtures). */
const ROOT = resolve(process.env.BENCH_ROOT ?? join(__dirname, '..', '..'));

/** The text config of a checkpoint's config.json, or of the 2B layout without one. */
export function kernelTextConfig(configPath = ''): TextConfig {
  const layout = configPath
    ? { config: JSON.parse(readFileSync(configPath, 'utf8')) }
    : JSON.parse(readFileSync(join(ROOT, 'test', 'fixtures', 'qwen3vl_2b_layout.json'), 'utf8'));
  return parseModelConfig({ model_type: 'qwen3_vl', ...layout.config }, configPath || '2B layout')
    .text;
}

/**
 * The graph's input x<K> over `rows` rows (0.1 everywhere), fp16 on WebGPU and fp32 on the CPU,
 * as either runtime's Tensor constructor takes it.
 */
export function kernelInput(name: string, rows: number, device: KernelDevice) {
  const k = Number(name.slice(1));
  const dims = [rows, k];
  return device === 'webgpu'
    ? { type: 'float16' as const, data: new Uint16Array(rows * k).fill(FLOAT16_0_1), dims }
    : { type: 'float32' as const, data: new Float32Array(rows * k).fill(0.1), dims };
}

/** [N, K] of every MatMulNBits a decode step runs, in order. */
export function decodeShapes(t: TextConfig): [number, number][] {
  const q = t.numHeads * t.headDim;
  const kv = t.numKvHeads * t.headDim;
  const d = t.hiddenSize;
  const layer: [number, number][] = [
    [q + 2 * kv, d],
    [d, q],
    [2 * t.intermediateSize, d],
    [d, t.intermediateSize],
  ];
  return [...Array.from({ length: t.numLayers }, () => layer).flat(), [t.vocabSize, d]];
}

function int4Bytes(
  [n, k]: [number, number],
  device: KernelDevice,
  format: KernelFormat,
): { packed: number; scales: number; zeros: number } {
  const blocks = k / format.blockSize;
  const scaleBytes = device === 'webgpu' ? 2 : 4;
  const zeros = format.zeroPoints ? n * Math.ceil(blocks / 2) : 0;
  return { packed: (n * k) / 2, scales: n * blocks * scaleBytes, zeros };
}

/** Bytes of weights, scales and zero points one pass over every matrix reads. */
export function passBytes(t: TextConfig, device: KernelDevice, format: KernelFormat): number {
  return decodeShapes(t).reduce((total, shape) => {
    const size = int4Bytes(shape, device, format);
    return total + size.packed + size.scales + size.zeros;
  }, 0);
}

/**
 * Writes the graph once under `dir` (about the size of the model's int4 weights). On the CPU the
 * products are summed into one output so none is pruned; on WebGPU each is an output left in GPU
 * memory, since the extra reduce dispatches would cost as much as the small matrices.
 * `anyRows`: the inputs take any number of rows (a run of several tokens), not one.
 */
export function ensureGraph(
  t: TextConfig,
  dir: string,
  device: KernelDevice,
  format: KernelFormat = ENGINE_KERNEL_FORMAT,
  { anyRows = false }: { anyRows?: boolean } = {},
): string {
  const dtype = device === 'webgpu' ? DataType.FLOAT16 : DataType.FLOAT;
  const { blockSize, zeroPoints, accuracyLevel } = format;
  const variant =
    format === ENGINE_KERNEL_FORMAT
      ? ''
      : `-b${blockSize}${zeroPoints ? '-zp' : '-sym'}-level${accuracyLevel}`;
  const name = `int4-kernel-${device}-${t.numLayers}x${t.hiddenSize}x${t.intermediateSize}x${t.vocabSize}${variant}${anyRows ? '-rows' : ''}`;
  const rows = anyRows ? 'rows' : 1;
  const path = join(dir, `${name}.onnx`);
  if (existsSync(path)) return path;
  mkdirSync(dir, { recursive: true });
  const sink = new FileDataSink(join(dir, `${name}.data`), `${name}.data`);
  const g = new GraphBuilder(name, sink);
  const inputs = new Map<number, string>();
  const input = (k: number) => {
    if (!inputs.has(k)) inputs.set(k, g.input(`x${k}`, dtype, [rows, k]));
    return inputs.get(k)!;
  };
  let sum: string | undefined;
  const shapes = decodeShapes(t);
  shapes.forEach(([n, k], i) => {
    const size = int4Bytes([n, k], device, format);
    const blocks = k / blockSize;
    const inputs = [
      input(k),
      g.initializer(`w${i}`, DataType.UINT8, [n, blocks, blockSize / 2], () =>
        randomFillSync(new Uint8Array(size.packed)),
      ),
      g.initializer(`s${i}`, dtype, [n, blocks], () => {
        const scales =
          dtype === DataType.FLOAT16
            ? new Uint16Array(n * blocks).fill(FLOAT16_1_64)
            : new Float32Array(n * blocks).fill(1 / 64);
        return new Uint8Array(scales.buffer);
      }),
    ];
    if (zeroPoints) {
      inputs.push(
        g.initializer(`z${i}`, DataType.UINT8, [n, Math.ceil(blocks / 2)], () =>
          new Uint8Array(size.zeros).fill(0x88),
        ),
      );
    }
    const y = g.op(
      'MatMulNBits',
      inputs,
      {
        K: attr.int(k),
        N: attr.int(n),
        bits: attr.int(4),
        block_size: attr.int(blockSize),
        accuracy_level: attr.int(accuracyLevel),
      },
      'com.microsoft',
    );
    if (device === 'webgpu') {
      // The LM head's product is cast to fp32 and comes back to the host, as the decoder's
      // logits do; the rest stay fp16 in GPU memory.
      const last = i === shapes.length - 1;
      g.node(last ? 'Cast' : 'Identity', [y], {
        outputs: [`y${i}`],
        ...(last ? { attrs: { to: attr.int(DataType.FLOAT) } } : {}),
      });
      g.output(`y${i}`, last ? DataType.FLOAT : dtype, [rows, n]);
      return;
    }
    const reduced = g.op('ReduceSum', [y], { keepdims: attr.int(1) });
    sum = sum ? g.op('Add', [sum, reduced]) : reduced;
  });
  if (sum) {
    g.node('Identity', [sum], { outputs: ['sum'] });
    g.output('sum', dtype, [1, 1]);
  }
  sink.close();
  writeFileSync(`${path}.partial`, g.encode(OPSETS));
  renameSync(`${path}.partial`, path);
  return path;
}

/**
 * WebGPU output locations: every product stays in GPU memory but the LM head's, which comes back
 * to the host as the decoder's logits do. That copy is also what makes a run wait for its work:
 * with every output on the device a run returns as soon as the work is queued.
 */
export function onDeviceButLast(shapes: [number, number][]): Record<string, 'gpu-buffer' | 'cpu'> {
  return Object.fromEntries(
    shapes.map((_, i) => [`y${i}`, i === shapes.length - 1 ? 'cpu' : 'gpu-buffer']),
  );
}

/**
 * Times the graph: on the CPU with onnxruntime's default thread count and with one thread; on
 * WebGPU with every output kept in GPU memory (as the decoder keeps its KV cache).
 */
export async function measureInt4Ceiling(
  text: TextConfig,
  dir: string,
  device: KernelDevice = 'cpu',
  runs = 20,
): Promise<KernelCeiling> {
  const path = ensureGraph(text, dir, device);
  const shapes = decodeShapes(text);
  const bytes = passBytes(text, device, ENGINE_KERNEL_FORMAT);
  const msByThreads: number[] = [];
  for (const threads of device === 'webgpu' ? [0] : [0, 1]) {
    const session = await ort.InferenceSession.create(path, {
      graphOptimizationLevel: 'all',
      extra: SESSION_CONFIG,
      ...(threads ? { intraOpNumThreads: threads } : {}),
      ...(device === 'webgpu'
        ? { executionProviders: ['webgpu'], preferredOutputLocation: onDeviceButLast(shapes) }
        : {}),
    });
    const feeds: Record<string, ort.Tensor> = {};
    for (const name of session.inputNames) {
      const { type, data, dims } = kernelInput(name, 1, device);
      feeds[name] = new ort.Tensor(type, data, dims);
    }
    const run = async () => {
      const outputs = await session.run(feeds);
      // GPU outputs are released at once, as the decoder releases each step's.
      for (const tensor of Object.values(outputs)) tensor.dispose();
    };
    for (let i = 0; i < 3; i++) await run();
    const times: number[] = [];
    for (let i = 0; i < runs; i++) {
      const started = performance.now();
      await run();
      times.push(performance.now() - started);
    }
    await session.release();
    times.sort((a, b) => a - b);
    msByThreads[threads] = times[Math.floor(times.length / 2)];
  }
  return { allThreadsMs: msByThreads[0], oneThreadMs: msByThreads[1], bytes };
}
