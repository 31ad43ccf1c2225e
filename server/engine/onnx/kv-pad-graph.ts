/**
 * Two small graphs over the decoder's handed-over KV tensors ([1, KV heads, length, head dim]),
 * one node per cache tensor, run on WebGPU beside the decoder:
 * - padding: Pad nodes give each tensor spare rows at the end, inputs and outputs staying in GPU
 *   memory (see runtime/kv-capacity.ts for why spare rows matter there);
 * - reading: Slice nodes cut each tensor to its valid rows, on the device, for the host to read
 *   (a conversation going onto the shelf).
 */
import { DataType, GraphBuilder, attr } from './graph-builder';
import { DryRunSink } from './external-data';

export const KV_PAD_IO = {
  input: (i: number) => `kv_${i}`,
  pads: (i: number) => `pads_${i}`,
  output: (i: number) => `padded_${i}`,
};

/** ONNX bytes of the graph for `count` tensors of the given element type. */
export function buildKvPadGraph(
  count: number,
  type: 'float16' | 'float32',
  kvHeads: number,
  headDim: number,
): Uint8Array {
  const dtype = type === 'float16' ? DataType.FLOAT16 : DataType.FLOAT;
  const g = new GraphBuilder('kv_pad', new DryRunSink());
  for (let i = 0; i < count; i++) {
    const x = g.input(KV_PAD_IO.input(i), dtype, [1, kvHeads, `length_${i}`, headDim]);
    const pads = g.input(KV_PAD_IO.pads(i), DataType.INT64, [8]);
    g.node('Pad', [x, pads], {
      outputs: [KV_PAD_IO.output(i)],
      attrs: { mode: attr.string('constant') },
    });
    g.output(KV_PAD_IO.output(i), dtype, [1, kvHeads, `capacity_${i}`, headDim]);
  }
  return g.encode([{ domain: '', version: 21 }]);
}

export const KV_READ_IO = {
  input: (i: number) => `kv_${i}`,
  /** The rows to keep, [1] int64, shared by every tensor. */
  rows: 'rows',
  output: (i: number) => `rows_${i}`,
};

/** ONNX bytes of the reading graph for `count` tensors of the given element type. */
export function buildKvReadGraph(
  count: number,
  type: 'float16' | 'float32',
  kvHeads: number,
  headDim: number,
): Uint8Array {
  const dtype = type === 'float16' ? DataType.FLOAT16 : DataType.FLOAT;
  const g = new GraphBuilder('kv_read', new DryRunSink());
  const rows = g.input(KV_READ_IO.rows, DataType.INT64, [1]);
  const start = g.constInt64([0]);
  const axis = g.constInt64([2]);
  for (let i = 0; i < count; i++) {
    const x = g.input(KV_READ_IO.input(i), dtype, [1, kvHeads, `capacity_${i}`, headDim]);
    g.node('Slice', [x, start, rows, axis], { outputs: [KV_READ_IO.output(i)] });
    g.output(KV_READ_IO.output(i), dtype, [1, kvHeads, 'rows', headDim]);
  }
  return g.encode([{ domain: '', version: 21 }]);
}
