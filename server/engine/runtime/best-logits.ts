/**
 * Reading the decoder's best-logit blocks (decoder-graph.ts, bestLogitBlocks) back into each
 * row's best logits.
 */
import type * as ort from 'onnxruntime-node';
import type { TopLogits } from '../contracts';
import { topKIds } from '../generation/sampling';
import { DECODER_OUTPUTS, LOGIT_BLOCK } from '../onnx/decoder-graph';

/**
 * Each row's `count` best logits from its best blocks, highest first and equal values lower id
 * first (as the host's argmax and top-k break ties): the few at or above the count-th value are
 * sorted (padding past the vocabulary left out).
 */
export async function readTopLogits(
  result: ort.InferenceSession.OnnxValueMapType,
  count: number,
  vocabSize: number,
): Promise<TopLogits[]> {
  const blocks = result[DECODER_OUTPUTS.bestBlocks];
  return topLogitsFromBlocks(
    (await blocks.getData()) as BigInt64Array,
    (await result[DECODER_OUTPUTS.bestBlockLogits].getData()) as Float32Array,
    blocks.dims[1],
    count,
    vocabSize,
  );
}

/**
 * The same from the outputs' data: `blockIds` [rows, kept] and `values` [rows, kept, LOGIT_BLOCK]
 * (also what a run that wrote them into GPU buffers of its own reads back).
 */
export function topLogitsFromBlocks(
  blockIds: BigInt64Array,
  values: Float32Array,
  kept: number,
  count: number,
  vocabSize: number,
): TopLogits[] {
  const perRow = kept * LOGIT_BLOCK;
  return Array.from({ length: blockIds.length / kept }, (_, row) => {
    const idOf = (i: number) =>
      Number(blockIds[row * kept + Math.floor(i / LOGIT_BLOCK)]) * LOGIT_BLOCK + (i % LOGIT_BLOCK);
    const rowValues = values.subarray(row * perRow, (row + 1) * perRow);
    const chosen = topKIds(rowValues, count).filter((i) => idOf(i) < vocabSize);
    chosen.sort((a, b) => rowValues[b] - rowValues[a] || idOf(a) - idOf(b));
    const best = chosen.slice(0, count);
    return { ids: best.map(idOf), logits: Float32Array.from(best, (i) => rowValues[i]) };
  });
}
