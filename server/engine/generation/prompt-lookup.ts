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

export const DEFAULT_PROMPT_LOOKUP: PromptLookupSettings = {
  maxNgram: 3,
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
  if (count <= 0) return [];
  for (let n = Math.min(settings.maxNgram, end - 1); n >= settings.minNgram; n--) {
    // Latest start i < end - n whose n tokens equal the last n (the suffix itself excluded).
    for (let i = end - n - 1; i >= 0; i--) {
      let same = true;
      for (let j = 0; j < n; j++) {
        if (tokens[i + j] !== tokens[end - n + j]) {
          same = false;
          break;
        }
      }
      if (!same) continue;
      // What followed the match, read on into the drafts themselves once it reaches the end:
      // a repeating pattern (a loop in the output) keeps drafting a full window.
      const from = i + n;
      const draft: number[] = [];
      for (let j = 0; j < count; j++) {
        draft.push(from + j < end ? tokens[from + j] : draft[from + j - end]);
      }
      return draft;
    }
  }
  return [];
}
