/**
 * Verifying one drafted token against the model's distribution at its position.
 *
 * Greedy: the draft is kept iff it is the argmax, so the output is exactly greedy decoding's.
 * Sampling: the draft is deterministic (all its mass on x), so the standard rule reduces to
 * keeping x with probability p(x) and, on rejection, drawing from p with x removed and
 * renormalised. The token that comes out is distributed exactly as p.
 */
import type { Random } from './prng';
import {
  bestToken,
  candidateDistribution,
  type RowScores,
  type SamplerSettings,
  wholeRow,
} from './sampling';

export type Verdict = { accepted: true } | { accepted: false; token: number };

export function verifyDraft(
  logits: RowScores,
  draft: number,
  settings: SamplerSettings,
  random: Random,
): Verdict {
  if (settings.greedy || settings.temperature <= 0) {
    const best = bestToken(logits);
    return best === draft ? { accepted: true } : { accepted: false, token: best };
  }
  const { ids, probs } = distribution(logits, settings);
  const at = ids.indexOf(draft);
  const p = at >= 0 ? probs[at] : 0;
  if (p > 0 && random() < p) return { accepted: true };
  // Residual: p without the draft, renormalised (1 - p of mass remains).
  let r = random() * (1 - p);
  let last = -1;
  for (let i = 0; i < ids.length; i++) {
    if (i === at || probs[i] === 0) continue;
    last = i;
    r -= probs[i];
    if (r < 0) return { accepted: false, token: ids[i] };
  }
  if (last < 0) return { accepted: true }; // p(draft) is 1: nothing else can be drawn
  return { accepted: false, token: ids[last] };
}

/** The sampling distribution sampleToken draws from, as explicit ids and probabilities. */
export function distribution(
  scores: RowScores,
  settings: SamplerSettings,
): { ids: number[]; probs: number[] } {
  if (settings.topK > 0 || settings.topP < 1) return candidateDistribution(scores, settings);
  const logits = wholeRow(scores);
  let max = -Infinity;
  for (let i = 0; i < logits.length; i++) if (logits[i] > max) max = logits[i];
  const ids: number[] = [];
  const probs: number[] = [];
  let total = 0;
  for (let i = 0; i < logits.length; i++) {
    const w = Math.exp((logits[i] - max) / settings.temperature);
    if (w === 0) continue;
    ids.push(i);
    probs.push(w);
    total += w;
  }
  for (let i = 0; i < probs.length; i++) probs[i] /= total;
  return { ids, probs };
}
