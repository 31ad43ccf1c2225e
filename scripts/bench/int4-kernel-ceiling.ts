/**
 * The CPU decode step's int4 matrix multiplies alone: one graph of MatMulNBits nodes with the
 * model's shapes (fused q/k/v, o, fused gate/up, down per layer, then the LM head), in the
 * engine's format (block 32, fp32 scales, zero points, accuracy_level 4), random weights and
 * nothing else. Timed in the benchmark's own process, it is what onnxruntime's int4 kernel does
 * on this machine: the ceiling of a full decode step, beside the memory roofline.
 */
import { randomFillSync } from 'node:crypto';
import { existsSync, mkdirSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import type { TextConfig } from '../../server/engine/checkpoint/config';
import { FileDataSink } from '../../server/engine/onnx/external-data';
import { DataType, GraphBuilder, attr } from '../../server/engine/onnx/graph-builder';
import { INT4_BLOCK_SIZE } from '../../server/engine/onnx/quantize-int4';

export interface KernelCeiling {
  /** Median ms of one pass over every matrix with onnxruntime's default threads, and one. */
  allThreadsMs: number;
  oneThreadMs: number;
  /** Bytes of int4 weights, scales and zero points one pass reads. */
  bytes: number;
}

/** [N, K] of every MatMulNBits a decode step runs, in order. */
function decodeShapes(t: TextConfig): [number, number][] {
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

function int4Bytes([n, k]: [number, number]): { packed: number; scales: number; zeros: number } {
  const blocks = k / INT4_BLOCK_SIZE;
  return { packed: (n * k) / 2, scales: n * blocks * 4, zeros: n * Math.ceil(blocks / 2) };
}

/** Writes the graph once under `dir` (about the size of the model's int4 weights). */
function ensureGraph(t: TextConfig, dir: string): string {
  const name = `int4-kernel-${t.numLayers}x${t.hiddenSize}x${t.intermediateSize}x${t.vocabSize}`;
  const path = join(dir, `${name}.onnx`);
  if (existsSync(path)) return path;
  mkdirSync(dir, { recursive: true });
  const sink = new FileDataSink(join(dir, `${name}.data`), `${name}.data`);
  const g = new GraphBuilder(name, sink);
  const inputs = new Map<number, string>();
  const input = (k: number) => {
    if (!inputs.has(k)) inputs.set(k, g.input(`x${k}`, DataType.FLOAT, [1, k]));
    return inputs.get(k)!;
  };
  let sum: string | undefined;
  decodeShapes(t).forEach(([n, k], i) => {
    const size = int4Bytes([n, k]);
    const blocks = k / INT4_BLOCK_SIZE;
    const y = g.op(
      'MatMulNBits',
      [
        input(k),
        g.initializer(`w${i}`, DataType.UINT8, [n, blocks, INT4_BLOCK_SIZE / 2], () =>
          randomFillSync(new Uint8Array(size.packed)),
        ),
        g.initializer(`s${i}`, DataType.FLOAT, [n, blocks], () => {
          const scales = new Float32Array(size.scales / 4).fill(1 / 64);
          return new Uint8Array(scales.buffer);
        }),
        g.initializer(`z${i}`, DataType.UINT8, [n, Math.ceil(blocks / 2)], () =>
          new Uint8Array(size.zeros).fill(0x88),
        ),
      ],
      {
        K: attr.int(k),
        N: attr.int(n),
        bits: attr.int(4),
        block_size: attr.int(INT4_BLOCK_SIZE),
        accuracy_level: attr.int(4),
      },
      'com.microsoft',
    );
    // Every product feeds the one output, so none is pruned away.
    const reduced = g.op('ReduceSum', [y], { keepdims: attr.int(1) });
    sum = sum ? g.op('Add', [sum, reduced]) : reduced;
  });
  g.node('Identity', [sum!], { outputs: ['sum'] });
  g.output('sum', DataType.FLOAT, [1, 1]);
  sink.close();
  writeFileSync(
    `${path}.partial`,
    g.encode([
      { domain: '', version: 21 },
      { domain: 'com.microsoft', version: 1 },
    ]),
  );
  renameSync(`${path}.partial`, path);
  return path;
}

/** Times the graph with onnxruntime's default thread count and with one thread. */
export async function measureInt4Ceiling(
  text: TextConfig,
  dir: string,
  runs = 20,
): Promise<KernelCeiling> {
  const path = ensureGraph(text, dir);
  const bytes = decodeShapes(text).reduce((total, shape) => {
    const size = int4Bytes(shape);
    return total + size.packed + size.scales + size.zeros;
  }, 0);
  const msByThreads: number[] = [];
  for (const threads of [0, 1]) {
    const session = await ort.InferenceSession.create(path, {
      graphOptimizationLevel: 'all',
      ...(threads ? { intraOpNumThreads: threads } : {}),
    });
    const feeds: Record<string, ort.Tensor> = {};
    for (const name of session.inputNames) {
      const k = Number(name.slice(1));
      feeds[name] = new ort.Tensor('float32', new Float32Array(k).fill(0.1), [1, k]);
    }
    for (let i = 0; i < 3; i++) await session.run(feeds);
    const times: number[] = [];
    for (let i = 0; i < runs; i++) {
      const started = performance.now();
      await session.run(feeds);
      times.push(performance.now() - started);
    }
    await session.release();
    times.sort((a, b) => a - b);
    msByThreads[threads] = times[Math.floor(times.length / 2)];
  }
  return { allThreadsMs: msByThreads[0], oneThreadMs: msByThreads[1], bytes };
}
