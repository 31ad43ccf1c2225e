/**
 * Gives the WebGPU decoder's handed-over KV tensors spare rows, on the device: a small session of
 * Pad nodes (onnx/kv-pad-graph.ts) whose gpu-buffer outputs become the next decoder run's past.
 * Both sessions share onnxruntime's one WebGPU device in the process, so the tensors never leave
 * GPU memory. kv-capacity.ts says how many rows and why.
 */
import * as ort from 'onnxruntime-node';
import type { TextConfig } from '../checkpoint/config';
import { KV_PAD_IO, buildKvPadGraph } from '../onnx/kv-pad-graph';
import type { CacheType } from './kv-cache';

export interface KvPadder {
  /** New tensors holding `tensors[i]`'s rows first, `capacities[i]` rows long (never shorter). */
  pad(tensors: ort.Tensor[], capacities: number[]): Promise<ort.Tensor[]>;
  release(): Promise<void>;
}

export async function createKvPadder(
  text: TextConfig,
  type: CacheType,
  base: ort.InferenceSession.SessionOptions,
): Promise<KvPadder> {
  const count = 2 * text.numLayers;
  const session = await ort.InferenceSession.create(
    buildKvPadGraph(count, type, text.numKvHeads, text.headDim),
    { ...base, preferredOutputLocation: 'gpu-buffer' },
  );
  return {
    async pad(tensors, capacities) {
      const feeds: Record<string, ort.Tensor> = {};
      tensors.forEach((tensor, i) => {
        const extra = Math.max(0, capacities[i] - tensor.dims[2]);
        feeds[KV_PAD_IO.input(i)] = tensor;
        feeds[KV_PAD_IO.pads(i)] = new ort.Tensor(
          'int64',
          BigInt64Array.of(0n, 0n, 0n, 0n, 0n, 0n, BigInt(extra), 0n),
          [8],
        );
      });
      const result = await session.run(feeds);
      return tensors.map((_, i) => result[KV_PAD_IO.output(i)] as ort.Tensor);
    },
    release: () => session.release(),
  };
}
