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
 *
 * Drafts stop at 16, so a verification run has at most 17 rows. Up to 24 rows its logits are
 * those of one-token runs within 1e-5 (CPU int4, and fp32 on lavapipe), so speculation keeps
 * plain greedy's tokens; from 31-32 rows the kernels change: CPU int4 logits move by 0.3, and
 * on lavapipe's WebGPU by 1.0 (prompts of 32 tokens or more too; its subgroups are 8 wide).
 * Drafting 32 made a refinement's speculative decode 21-23% faster on an H200 (345 -> 416-424
 * tokens/s, docs/bench/2026-11-27-h200) and the replayed pages 3.8x -> 5.1x plain speed on
 * WebGPU; it waits for NVIDIA's 33-row runs to be checked against steps (profile-decode's
 * max_logit_diff_vs_steps).
 */
export const DEFAULT_PROMPT_LOOKUP: PromptLookupSettings = {
  maxNgram: 32,
  minNgram: 2,
  draftTokens: 16,
};

/**
 * Up to `limit` drafted tokens following the longest earlier match (up to maxNgram tokens; the
 * latest among equals) of the end of `tokens`, or [] when none reaches minNgram. Only when
 * `tokens` holds no match are `references` searched (earlier answers, most recent last; drafts
 * from one stop at its end): taking a longer match there over one in the sequence copied how an
 * earlier answer went on where the sequence itself was about to repeat, and in a loop that
 * turned most drafts into rejections (the tiny model's diagram: 12 decoder runs became 48).
 */
export function draftTokens(
  tokens: readonly number[],
  settings: PromptLookupSettings,
  limit = settings.draftTokens,
  references: readonly (readonly number[])[] = [],
): number[] {
  const count = Math.min(limit, settings.draftTokens);
  const end = tokens.length;
  if (count <= 0 || end < 2) return [];
  const own = longestMatch(tokens, tokens, end - 1, settings.maxNgram);
  if (own.length >= settings.minNgram) {
    // What followed the match, read on into the drafts themselves once it reaches the end:
    // a repeating pattern (a loop in the output) keeps drafting a full window.
    const from = own.end + 1;
    const draft: number[] = [];
    for (let j = 0; j < count; j++) {
      draft.push(from + j < end ? tokens[from + j] : draft[from + j - end]);
    }
    return draft;
  }
  let best = { length: 0, end: -1, source: tokens };
  for (let r = references.length - 1; r >= 0 && best.length < settings.maxNgram; r--) {
    const source = references[r];
    const match = longestMatch(source, tokens, source.length - 1, settings.maxNgram);
    if (match.length > best.length) best = { ...match, source };
  }
  if (best.length < settings.minNgram) return [];
  return best.source.slice(best.end + 1, best.end + 1 + count);
}

/**
 * The longest run of `source` ending before position `before` that equals the end of `tokens`
 * (up to `most` tokens; the latest among equals): its length and last position, or length 0.
 * One backward pass over the positions holding the last token, instead of a pass per n-gram
 * length that would rescan everything for each length that does not occur.
 */
function longestMatch(
  source: readonly number[],
  tokens: readonly number[],
  before: number,
  most: number,
): { length: number; end: number } {
  const last = tokens.length - 1;
  let best = { length: 0, end: -1 };
  for (let p = before - 1; p >= 0; p--) {
    if (source[p] !== tokens[last]) continue;
    let length = 1;
    while (length < most && p - length >= 0 && source[p - length] === tokens[last - length]) {
      length++;
    }
    if (length > best.length) {
      best = { length, end: p };
      if (length >= most) break;
    }
  }
  return best;
}
