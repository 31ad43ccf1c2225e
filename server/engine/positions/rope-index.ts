/**
 * Qwen3-VL multimodal RoPE positions (transformers `get_rope_index`, spec §4) for one unpadded
 * prompt: text tokens count up in all three streams; an image's tokens share a temporal
 * position and spread over rows (h) and columns (w) of the merged grid; text after an image
 * continues from the largest position so far + 1. Decode steps then use
 * `pastLength + ropeDelta` in all three streams.
 */

export interface RopeIndex {
  /** Streams (t, h, w), each as long as the prompt. */
  positionIds: [number[], number[], number[]];
  /** max position + 1 - prompt length; add to the cache length for each decode step. */
  ropeDelta: number;
}

export function computeRopeIndex(
  inputIds: readonly number[],
  imageGridThw: readonly (readonly [number, number, number])[],
  imageTokenId: number,
  mergeSize: number,
): RopeIndex {
  const t: number[] = new Array(inputIds.length);
  const h: number[] = new Array(inputIds.length);
  const w: number[] = new Array(inputIds.length);
  let next = 0; // largest position so far + 1
  let st = 0;
  for (const [gridT, gridH, gridW] of imageGridThw) {
    const ed = inputIds.indexOf(imageTokenId, st);
    if (ed < 0) {
      throw new Error(`rope index: ${imageGridThw.length} images but fewer image token runs`);
    }
    for (let i = st; i < ed; i++) t[i] = h[i] = w[i] = next++;
    const lh = gridH / mergeSize;
    const lw = gridW / mergeSize;
    const base = next;
    let i = ed;
    for (let ti = 0; ti < gridT; ti++) {
      for (let hi = 0; hi < lh; hi++) {
        for (let wi = 0; wi < lw; wi++, i++) {
          t[i] = base + ti;
          h[i] = base + hi;
          w[i] = base + wi;
        }
      }
    }
    next = base + Math.max(gridT, lh, lw);
    st = ed + gridT * lh * lw;
  }
  for (let i = st; i < inputIds.length; i++) t[i] = h[i] = w[i] = next++;
  return { positionIds: [t, h, w], ropeDelta: next - inputIds.length };
}

/** The MRoPE position of the token written at cache index `pastLength` (same in all streams). */
export function decodePosition(pastLength: number, ropeDelta: number): number {
  return pastLength + ropeDelta;
}
