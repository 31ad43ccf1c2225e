/**
 * Next-token selection from last-position logits, in Hugging Face's logits-processor order:
 * repetition penalty, temperature, top-k, top-p, then softmax and one draw (or argmax).
 */
import type { TopLogits } from '../contracts';
import type { Random } from './prng';

export interface SamplerSettings {
  greedy: boolean;
  temperature: number;
  /** 0 disables top-k. */
  topK: number;
  /** 1 disables top-p. */
  topP: number;
  /** 1 disables the penalty. */
  repetitionPenalty: number;
}

/** HF RepetitionPenaltyLogitsProcessor: every token already in the context is made less likely. */
export function applyRepetitionPenalty(
  logits: Float32Array,
  contextIds: Iterable<number>,
  penalty: number,
): void {
  if (penalty === 1) return;
  const seen = new Set(contextIds);
  for (const id of seen) {
    const value = logits[id];
    logits[id] = value < 0 ? value * penalty : value / penalty;
  }
}

/** A row of next-token scores: the whole vocabulary, or its best logits only. */
export type RowScores = Float32Array | TopLogits;

/**
 * Whether a row's `available` best logits pick exactly the token the whole row would: greedy
 * needs the best one, top-k sampling the k best plus room for ties at the k-th value (ties
 * past the last one kept would go unseen, which real logits never produce). A repetition
 * penalty lowers tokens already seen, which can let one from outside the best in, and top-p
 * alone or plain sampling need the whole vocabulary.
 */
export function fitsTopLogits(settings: SamplerSettings, available: number): boolean {
  if (available <= 0 || settings.repetitionPenalty !== 1) return false;
  if (settings.greedy || settings.temperature <= 0) return true;
  return settings.topK > 0 && settings.topK < available;
}

/** A row as the whole vocabulary's logits, which plain sampling (no top-k, no top-p) needs. */
export function wholeRow(scores: RowScores): Float32Array {
  if (!(scores instanceof Float32Array))
    throw new Error('sampling: plain sampling needs every logit');
  return scores;
}

/** The best token of a row (the lowest id among equal best values). */
export function bestToken(scores: RowScores): number {
  return scores instanceof Float32Array ? argmax(scores) : scores.ids[0];
}

export function argmax(logits: Float32Array): number {
  let best = 0;
  let bestValue = -Infinity;
  for (let i = 0; i < logits.length; i++) {
    if (logits[i] > bestValue) {
      bestValue = logits[i];
      best = i;
    }
  }
  return best;
}

export interface Candidates {
  ids: number[];
  /** Probabilities, same order as ids, summing to 1. */
  probs: number[];
}

/**
 * The tokens that survive temperature, top-k and top-p, with their probabilities. When top-k
 * or top-p filters, ids come highest first. Ties at the k-th value are kept, as HF's
 * TopKLogitsWarper does. Sorting all 150k logits is avoided: top-k takes a heap, top-p only
 * sorts the head of the distribution that holds at least top_p of the mass.
 */
export function candidateDistribution(
  scores: RowScores,
  settings: Pick<SamplerSettings, 'temperature' | 'topK' | 'topP'>,
): Candidates {
  const { temperature, topK, topP } = settings;
  let { ids, valueOf } = topKCandidates(scores, topK);
  if (ids.length === 0) throw new Error('sampling: every logit is -Infinity');
  let max = -Infinity;
  for (const id of ids) max = Math.max(max, valueOf(id));
  const weight = (id: number): number => Math.exp((valueOf(id) - max) / temperature);
  let total = 0;
  for (const id of ids) total += weight(id);
  if (topP < 1) ids = nucleusHead(ids, weight, topP * total);
  if (topK > 0 || topP < 1) ids.sort((x, y) => valueOf(y) - valueOf(x));
  let probs = ids.map(weight);
  if (topP < 1) {
    // HF's TopPLogitsWarper removes, from the least likely up, every token whose cumulative
    // probability (counted from the least likely) stays <= 1 - top_p; the best always stays.
    // The head holds every kept token, and the mass outside it counts as already below.
    let tail = total - probs.reduce((a, b) => a + b, 0);
    let keep = ids.length;
    for (let i = ids.length - 1; i > 0; i--) {
      tail += probs[i];
      if (tail > (1 - topP) * total) break;
      keep = i;
    }
    ids = ids.slice(0, keep);
    probs = probs.slice(0, keep);
  }
  normalize(probs);
  return { ids, probs };
}

/**
 * The ids top-k keeps (every id when k is 0), in id order, and their logits. From a row's
 * best logits, the ids at or above the k-th value come out the same.
 */
function topKCandidates(
  scores: RowScores,
  k: number,
): { ids: number[]; valueOf: (id: number) => number } {
  if (scores instanceof Float32Array) {
    const ids = k > 0 && k < scores.length ? topKIds(scores, k) : allFiniteIds(scores);
    return { ids, valueOf: (id) => scores[id] };
  }
  const values = new Map<number, number>();
  const threshold = scores.logits[Math.min(k > 0 ? k : Infinity, scores.ids.length) - 1];
  scores.ids.forEach((id, i) => {
    if (scores.logits[i] >= threshold) values.set(id, scores.logits[i]);
  });
  return { ids: [...values.keys()].sort((a, b) => a - b), valueOf: (id) => values.get(id)! };
}

/**
 * The most likely ids holding at least `mass` of the (unnormalized) weight: a token outside
 * such a head has at least top_p of the probability above it, so top-p removes it anyway.
 */
function nucleusHead(ids: number[], weight: (id: number) => number, mass: number): number[] {
  if (ids.length <= 4096) return ids;
  for (let threshold = 1e-2; threshold > 1e-30; threshold /= 100) {
    const head: number[] = [];
    let sum = 0;
    for (const id of ids) {
      const w = weight(id);
      if (w >= threshold) {
        head.push(id);
        sum += w;
      }
    }
    if (sum >= mass) return head;
  }
  return ids;
}

export function sampleToken(scores: RowScores, settings: SamplerSettings, random: Random): number {
  if (settings.greedy || settings.temperature <= 0) return bestToken(scores);
  if (settings.topK <= 0 && settings.topP >= 1) {
    return sampleFull(wholeRow(scores), settings.temperature, random);
  }
  const { ids, probs } = candidateDistribution(scores, settings);
  let r = random();
  for (let i = 0; i < ids.length; i++) {
    r -= probs[i];
    if (r < 0) return ids[i];
  }
  return ids[ids.length - 1];
}

/** One draw from softmax(logits / temperature) over the whole vocabulary, without sorting. */
function sampleFull(logits: Float32Array, temperature: number, random: Random): number {
  const max = logits[argmax(logits)];
  const weights = new Float64Array(logits.length);
  let total = 0;
  for (let i = 0; i < logits.length; i++) {
    weights[i] = Math.exp((logits[i] - max) / temperature);
    total += weights[i];
  }
  let r = random() * total;
  let last = 0;
  for (let i = 0; i < weights.length; i++) {
    if (weights[i] === 0) continue;
    last = i;
    r -= weights[i];
    if (r < 0) return i;
  }
  return last;
}

function normalize(values: number[]): void {
  let sum = 0;
  for (const v of values) sum += v;
  for (let i = 0; i < values.length; i++) values[i] /= sum;
}

function allFiniteIds(logits: Float32Array): number[] {
  const ids: number[] = [];
  for (let i = 0; i < logits.length; i++) if (logits[i] > -Infinity) ids.push(i);
  return ids;
}

/** Ids whose logit is at least the k-th largest (a min-heap of size k, O(n log k)). */
export function topKIds(logits: Float32Array, k: number): number[] {
  const heap = new Float32Array(k);
  let size = 0;
  for (let i = 0; i < logits.length; i++) {
    const v = logits[i];
    if (size < k) {
      let j = size++;
      heap[j] = v;
      while (j > 0) {
        const parent = (j - 1) >> 1;
        if (heap[parent] <= heap[j]) break;
        [heap[parent], heap[j]] = [heap[j], heap[parent]];
        j = parent;
      }
    } else if (v > heap[0]) {
      heap[0] = v;
      let j = 0;
      for (;;) {
        const l = 2 * j + 1;
        const r = l + 1;
        let m = j;
        if (l < k && heap[l] < heap[m]) m = l;
        if (r < k && heap[r] < heap[m]) m = r;
        if (m === j) break;
        [heap[m], heap[j]] = [heap[j], heap[m]];
        j = m;
      }
    }
  }
  const threshold = heap[0];
  const ids: number[] = [];
  for (let i = 0; i < logits.length; i++) if (logits[i] >= threshold) ids.push(i);
  return ids;
}
