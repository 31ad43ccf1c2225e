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

/** The cache tensors' shape: how many, their element type, KV heads and head size. */
export interface KvTensors {
  count: number;
  type: 'float16' | 'float32';
  kvHeads: number;
  headDim: number;
}

/**
 * ONNX bytes of a graph with one node per cache tensor: `nodes` adds what the tensors share and
 * returns the function that adds tensor i's node, given its input, and names its output's rows.
 */
function perTensorGraph(
  name: string,
  kv: KvTensors,
  io: { input: (i: number) => string; output: (i: number) => string },
  nodes: (g: GraphBuilder) => (i: number, x: string) => string,
): Uint8Array {
  const dtype = kv.type === 'float16' ? DataType.FLOAT16 : DataType.FLOAT;
  const g = new GraphBuilder(name, new DryRunSink());
  const addNode = nodes(g);
  for (let i = 0; i < kv.count; i++) {
    const x = g.input(io.input(i), dtype, [1, kv.kvHeads, `rows_in_${i}`, kv.headDim]);
    const rows = addNode(i, x);
    g.output(io.output(i), dtype, [1, kv.kvHeads, rows, kv.headDim]);
  }
  return g.encode([{ domain: '', version: 21 }]);
}

/** ONNX bytes of the padding graph. */
export function buildKvPadGraph(kv: KvTensors): Uint8Array {
  return perTensorGraph('kv_pad', kv, KV_PAD_IO, (g) => (i, x) => {
    const pads = g.input(KV_PAD_IO.pads(i), DataType.INT64, [8]);
    g.node('Pad', [x, pads], {
      outputs: [KV_PAD_IO.output(i)],
      attrs: { mode: attr.string('constant') },
    });
    return `capacity_${i}`;
  });
}

export const KV_READ_IO = {
  input: (i: number) => `kv_${i}`,
  /** The rows to keep, [1] int64, shared by every tensor. */
  rows: 'rows',
  output: (i: number) => `rows_${i}`,
};

/** ONNX bytes of the reading graph: each tensor sliced to its first `rows` rows. */
export function buildKvReadGraph(kv: KvTensors): Uint8Array {
  return perTensorGraph('kv_read', kv, KV_READ_IO, (g) => {
    const rows = g.input(KV_READ_IO.rows, DataType.INT64, [1]);
    const start = g.constInt64([0]);
    const axis = g.constInt64([2]);
    return (i, x) => {
      g.node('Slice', [x, start, rows, axis], { outputs: [KV_READ_IO.output(i)] });
      return 'rows';
    };
  });
}
