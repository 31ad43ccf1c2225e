/**
 * How much of the decoder's cached sequence a new prompt may keep: the common token prefix,
 * provided every image of the new prompt lies inside it and is the same image (by content
 * hash) as the one cached there. A refinement (same image, previous answer, new instruction)
 * keeps everything up to the new instruction; a different image or an edited earlier turn
 * keeps only what is truly identical, and an image after the divergence means a full prefill
 * (DeepStack features are injected only by a full prefill).
 */

export interface CachedSequence {
  ids: readonly number[];
  /** Content hashes of the images whose pads are in `ids`, in order. */
  imageKeys: readonly string[];
}

export function reusablePrefix(
  cached: CachedSequence,
  inputIds: readonly number[],
  imageKeys: readonly string[],
  imageTokenId: number,
): number {
  const limit = Math.min(cached.ids.length, inputIds.length - 1); // one token must run
  let common = 0;
  while (common < limit && cached.ids[common] === inputIds[common]) common++;
  if (common === 0) return 0;
  if (inputIds.indexOf(imageTokenId, common) >= 0) return 0;
  for (let i = 0; i < imageKeys.length; i++) {
    if (cached.imageKeys[i] !== imageKeys[i]) return 0;
  }
  // Never cut inside a run of image pads (the whole image is kept, or none of it).
  return common;
}
