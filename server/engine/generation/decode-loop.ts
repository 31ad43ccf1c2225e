/**
 * The token loop: prefill, then pick a token, stream its text, and feed it back until an eos
 * id, a stop string, the token budget or the caller's AbortSignal ends it. The AbortSignal is
 * checked between steps and between a long prompt's chunks (a running ONNX run is not
 * interrupted).
 *
 * With speculation, each run appends the chosen token plus drafted tokens (prompt lookup) and
 * returns logits for all of them; drafts are kept while they pass verification, the first
 * rejection supplies the next token, and the cache is truncated behind the last kept token.
 */
import type { PrefillInput, TextDecoder } from '../contracts';
import { isEngineError } from '../errors';
import { decodePosition } from '../positions/rope-index';
import type { Random } from './prng';
import { DraftPlanner } from './draft-planner';
import type { RunCost } from './run-cost';
import { draftTokens, type PromptLookupSettings } from './prompt-lookup';
import {
  applyRepetitionPenalty,
  fitsTopLogits,
  sampleToken,
  type RowScores,
  type SamplerSettings,
} from './sampling';
import { verifyDraft } from './speculative-accept';
import { StopStringMatcher } from './stop-strings';
import { TextStreamer } from './stream-text';
import type { TextTokenizer } from '../tokenizer/text-tokenizer';

export interface DecodeLoopInput {
  decoder: TextDecoder;
  prefill: PrefillInput;
  ropeDelta: number;
  maxNewTokens: number;
  eosTokenIds: readonly number[];
  sampler: SamplerSettings;
  random: Random;
  tokenizer: Pick<TextTokenizer, 'decode'>;
  stop?: readonly string[];
  signal?: AbortSignal;
  onText?: (delta: string) => void;
  /** Prompt-lookup speculation; off when absent. */
  speculation?: PromptLookupSettings;
  /** Earlier answers prompt lookup may copy from, oldest first (recent-answers.ts). */
  lookupReferences?: readonly (readonly number[])[];
  /** The device's decoder run cost, which sets how long drafts are worth (default the CPU's). */
  runCost?: RunCost;
}

export interface DecodeLoopResult {
  /** Generated ids, including the eos id that ended generation, if any. */
  tokenIds: number[];
  text: string;
  finishReason: 'stop' | 'length' | 'cancelled';
  prefillMs: number;
  /** From the start of prefill to the first token chosen. */
  firstTokenMs: number;
  /** Time spent in decoder runs after the first token (steps and verification runs). */
  decodeMs: number;
  /** Decoder runs after prefill. */
  decodeSteps: number;
  draftTokens: number;
  acceptedDrafts: number;
}

export async function runDecodeLoop(input: DecodeLoopInput): Promise<DecodeLoopResult> {
  const { decoder, sampler, random, signal } = input;
  const eos = new Set(input.eosTokenIds);
  const context = new Set(input.prefill.inputIds);
  // Prompt + output so far: where drafts are looked up.
  const sequence = [...input.prefill.inputIds];
  const streamer = new TextStreamer(input.tokenizer);
  const stops = new StopStringMatcher(input.stop ?? []);
  const tokenIds: number[] = [];
  let text = '';
  const emit = (delta: string): void => {
    if (!delta) return;
    text += delta;
    input.onText?.(delta);
  };
  const started = performance.now();
  const result = (finishReason: DecodeLoopResult['finishReason']): DecodeLoopResult => ({
    tokenIds,
    text,
    finishReason,
    prefillMs,
    firstTokenMs,
    decodeMs,
    decodeSteps,
    draftTokens: drafted,
    acceptedDrafts: accepted,
  });
  let prefillMs = 0;
  let firstTokenMs = 0;
  let decodeMs = 0;
  let decodeSteps = 0;
  let drafted = 0;
  let accepted = 0;

  /** Takes `token` as output; returns how generation ends, or undefined to go on. */
  const take = (token: number): DecodeLoopResult['finishReason'] | undefined => {
    if (tokenIds.length === 0) firstTokenMs = performance.now() - started;
    tokenIds.push(token);
    sequence.push(token);
    context.add(token);
    if (eos.has(token)) {
      emit(stops.push(streamer.flush()).text + stops.flush());
      return 'stop';
    }
    const matched = stops.push(streamer.push(token));
    emit(matched.text);
    if (matched.stopped) return 'stop';
    if (tokenIds.length >= input.maxNewTokens) {
      const tail = stops.push(streamer.flush());
      emit(tail.text);
      if (tail.stopped) return 'stop';
      emit(stops.flush());
      return 'length';
    }
    if (signal?.aborted) {
      emit(stops.flush());
      return 'cancelled';
    }
    return undefined;
  };
  // Runs after prefill bring back each row's best logits only, when those pick the same token.
  const topOnly = fitsTopLogits(sampler, decoder.topLogitsPerRow);
  // Argmax choices let the decoder queue the next step before the host reads this one
  // (stepGreedy). A step queued when drafts turn up is wasted, so after a run with drafts the
  // next step is not pipelined.
  const pipelinable =
    topOnly &&
    decoder.stepGreedy !== undefined &&
    (sampler.greedy || sampler.temperature <= 0) &&
    sampler.repetitionPenalty === 1;
  let lastRunDrafted = false;
  const penalized = (logits: RowScores): RowScores => {
    if (sampler.repetitionPenalty === 1 || !(logits instanceof Float32Array)) return logits;
    const copy = Float32Array.from(logits);
    applyRepetitionPenalty(copy, context, sampler.repetitionPenalty);
    return copy;
  };

  if (signal?.aborted) return result('cancelled');
  let logits: RowScores;
  try {
    logits = await decoder.prefill({ ...input.prefill, signal });
  } catch (error) {
    // Stopped between two chunks of a long prompt.
    if (isEngineError(error, 'cancelled')) return result('cancelled');
    throw error;
  }
  prefillMs = performance.now() - started;
  // No new tokens: the prompt read into the KV cache ahead of a request that extends it.
  if (input.maxNewTokens <= 0) return result('length');
  // A token already chosen by a rejected draft's residual draw.
  let chosen: number | undefined;
  const planner =
    input.speculation && new DraftPlanner(input.speculation.draftTokens, input.runCost);
  for (;;) {
    const token: number = chosen ?? sampleToken(penalized(logits), sampler, random);
    chosen = undefined;
    const end = take(token);
    if (end) return result(end);

    const position = decodePosition(decoder.pastLength, input.ropeDelta);
    // Drafts never run past the token budget (the token after the last draft is still free),
    // nor past what the planner finds worth drafting.
    const room = Math.min(input.maxNewTokens - tokenIds.length - 1, planner ? planner.next() : 0);
    const drafts = input.speculation
      ? draftTokens(sequence, input.speculation, room, input.lookupReferences)
      : [];
    const stepStarted = performance.now();
    if (drafts.length === 0) {
      logits =
        pipelinable && !lastRunDrafted
          ? await decoder.stepGreedy!(token, position)
          : topOnly
            ? (await decoder.extendTop([token], position))[0]
            : await decoder.step(token, position);
      lastRunDrafted = false;
      decodeMs += performance.now() - stepStarted;
      decodeSteps++;
      planner?.record(0, 0);
      continue;
    }
    const base = decoder.pastLength;
    const run = [token, ...drafts];
    const rows: RowScores[] = topOnly
      ? await decoder.extendTop(run, position)
      : await decoder.extend(run, position);
    decodeMs += performance.now() - stepStarted;
    decodeSteps++;
    drafted += drafts.length;
    lastRunDrafted = true;
    let kept = 0;
    for (; kept < drafts.length; kept++) {
      const verdict = verifyDraft(penalized(rows[kept]), drafts[kept], sampler, random);
      if (!verdict.accepted) {
        chosen = verdict.token;
        break;
      }
      accepted++;
      const finished = take(drafts[kept]);
      if (finished) return result(finished);
    }
    planner?.record(drafts.length, kept);
    // Keep the token and the accepted drafts; the rejected ones' rows are overwritten later.
    decoder.truncate(base + 1 + kept);
    if (chosen === undefined) logits = rows[drafts.length];
  }
}
