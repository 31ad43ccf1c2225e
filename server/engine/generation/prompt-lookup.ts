/**
 * Prompt-lookup drafting (n-gram speculation): the tokens that followed the latest earlier
 * occurrence of the sequence's last n tokens are proposed as the next ones. Code repeats
 * itself, and a refinement mostly repeats the previous answer that sits in its prompt, so the
 * drafts are often right; the decoder verifies them all in one run.
 */

export interface PromptLookupSettings {
  /** Longest n-gram to match; shorter ones are tried when it does not occur. */
  maxNgram: number;
  /** Shortest n-gram worth matching (1 drafts after any repeated token). */
  minNgram: number;
  /** Most tokens drafted at once. */
  draftTokens: number;
}

/**
 * Matching up to 32 tokens picks the right place to copy from: markup repeats short n-grams
 * (`</div>\n<div class="`) everywhere, and the latest 3-gram match is often another card or
 * row than the one being rewritten. Replaying real landing pages through the decode loop
 * (scripts/bench/speculation-replay.ts, docs/bench/2026-11-26-cpu) took a refinement's decode
 * from 2.5x to 3.9x plain speed on the CPU and 2.0x to 3.0x on WebGPU, first generations from
 * 1.37x to 1.41x and 1.17x to 1.21x; 64 adds little.
 */
export const DEFAULT_PROMPT_LOOKUP: PromptLookupSettings = {
  maxNgram: 32,
  minNgram: 2,
  draftTokens: 16,
};

/**
 * Up to `limit` drafted tokens following the latest earlier match of the last n-gram of
 * `tokens` (longest n first), or [] when no n-gram recurs.
 */
export function draftTokens(
  tokens: readonly number[],
  settings: PromptLookupSettings,
  limit = settings.draftTokens,
): number[] {
  const count = Math.min(limit, settings.draftTokens);
  const end = tokens.length;
  if (count <= 0 || end < 2) return [];
  // One backward pass: at each earlier position p holding the last token, how many tokens
  // ending at p equal the sequence's last ones (up to maxNgram). The longest wins, the latest
  // among equals; a full-length match ends the search. A pass per n would rescan the whole
  // sequence for every n that does not recur, which long n-grams make the common case.
  const last = tokens[end - 1];
  let bestLength = 0;
  let bestEnd = -1;
  for (let p = end - 2; p >= 0; p--) {
    if (tokens[p] !== last) continue;
    let length = 1;
    while (
      length < settings.maxNgram &&
      p - length >= 0 &&
      tokens[p - length] === tokens[end - 1 - length]
    ) {
      length++;
    }
    if (length > bestLength) {
      [bestLength, bestEnd] = [length, p];
      if (length >= settings.maxNgram) break;
    }
  }
  if (bestLength < settings.minNgram) return [];
  // What followed the match, read on into the drafts themselves once it reaches the end:
  // a repeating pattern (a loop in the output) keeps drafting a full window.
  const from = bestEnd + 1;
  const draft: number[] = [];
  for (let j = 0; j < count; j++) {
    draft.push(from + j < end ? tokens[from + j] : draft[from + j - end]);
  }
  return draft;
}
