/**
 * Gives the WebGPU decoder's handed-over KV tensors spare rows, on the device: a small session of
 * Pad nodes (onnx/kv-pad-graph.ts) whose gpu-buffer outputs become the next decoder run's past.
 * Both sessions share onnxruntime's one WebGPU device in the process, so the tensors never leave
 * GPU memory. kv-capacity.ts says how many rows and why. It also reads the tensors' valid rows
 * back to the host, through a session of Slice nodes with host outputs: onnxruntime-node 1.30
 * aborts the process when a WebGPU gpu-buffer tensor is read with getData().
 */
import * as ort from 'onnxruntime-node';
import type { TextConfig } from '../checkpoint/config';
import { KV_PAD_IO, KV_READ_IO, buildKvPadGraph, buildKvReadGraph } from '../onnx/kv-pad-graph';
import type { CacheType } from './kv-cache';

export interface KvPadder {
  /** New tensors holding `tensors[i]`'s rows first, `capacities[i]` rows long (never shorter). */
  pad(tensors: ort.Tensor[], capacities: number[]): Promise<ort.Tensor[]>;
  /** The first `rows` rows of each tensor, on the host (the tensors are left as they are). */
  read(tensors: ort.Tensor[], rows: number): Promise<(Float32Array | Uint16Array)[]>;
  release(): Promise<void>;
}

export async function createKvPadder(
  text: TextConfig,
  type: CacheType,
  base: ort.InferenceSession.SessionOptions,
): Promise<KvPadder> {
  const count = 2 * text.numLayers;
  const kv = { count, type, kvHeads: text.numKvHeads, headDim: text.headDim };
  const session = await ort.InferenceSession.create(buildKvPadGraph(kv), {
    ...base,
    preferredOutputLocation: 'gpu-buffer',
  });
  // Made at the first read: most sessions never shelve a conversation.
  let reader: Promise<ort.InferenceSession> | undefined;
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
    async read(tensors, rows) {
      reader ??= ort.InferenceSession.create(buildKvReadGraph(kv), {
        ...base,
        preferredOutputLocation: 'cpu',
      });
      const feeds: Record<string, ort.Tensor> = {
        [KV_READ_IO.rows]: new ort.Tensor('int64', BigInt64Array.of(BigInt(rows)), [1]),
      };
      tensors.forEach((tensor, i) => (feeds[KV_READ_IO.input(i)] = tensor));
      const result = await (await reader).run(feeds);
      return tensors.map((_, i) => result[KV_READ_IO.output(i)].data as Float32Array | Uint16Array);
    },
    async release() {
      await session.release();
      await (await reader?.catch(() => undefined))?.release();
    },
  };
}
