/**
 * The KV padding graph: a handful of Pad nodes, one per cache tensor, that give each of the
 * decoder's handed-over KV tensors ([1, KV heads, length, head dim]) spare rows at the end.
 * It runs on WebGPU beside the decoder, its inputs and outputs staying in GPU memory (see
 * runtime/kv-capacity.ts for why spare rows matter there).
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
