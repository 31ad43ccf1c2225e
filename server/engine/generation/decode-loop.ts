/**
 * The token loop: prefill, then pick a token, stream its text, and feed it back until an eos
 * id, a stop string, the token budget or the caller's AbortSignal ends it. The AbortSignal is
 * checked between steps (a running ONNX step is not interrupted).
 */
import type { PrefillInput, TextDecoder } from '../contracts';
import { decodePosition } from '../positions/rope-index';
import type { Random } from './prng';
import { applyRepetitionPenalty, sampleToken, type SamplerSettings } from './sampling';
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
}

export interface DecodeLoopResult {
  /** Generated ids, including the eos id that ended generation, if any. */
  tokenIds: number[];
  text: string;
  finishReason: 'stop' | 'length' | 'cancelled';
  prefillMs: number;
  /** From the start of prefill to the first token chosen. */
  firstTokenMs: number;
  /** Time spent in decode steps after the first token. */
  decodeMs: number;
  decodeSteps: number;
}

export async function runDecodeLoop(input: DecodeLoopInput): Promise<DecodeLoopResult> {
  const { decoder, sampler, random, signal } = input;
  const eos = new Set(input.eosTokenIds);
  const context = new Set(input.prefill.inputIds);
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
  });
  let prefillMs = 0;
  let firstTokenMs = 0;
  let decodeMs = 0;
  let decodeSteps = 0;

  if (signal?.aborted || input.maxNewTokens <= 0) {
    return result(signal?.aborted ? 'cancelled' : 'length');
  }
  let logits = await decoder.prefill(input.prefill);
  prefillMs = performance.now() - started;
  for (;;) {
    if (sampler.repetitionPenalty !== 1) {
      logits = Float32Array.from(logits);
      applyRepetitionPenalty(logits, context, sampler.repetitionPenalty);
    }
    const token = sampleToken(logits, sampler, random);
    if (tokenIds.length === 0) firstTokenMs = performance.now() - started;
    tokenIds.push(token);
    context.add(token);
    if (eos.has(token)) {
      emit(stops.push(streamer.flush()).text + stops.flush());
      return result('stop');
    }
    const matched = stops.push(streamer.push(token));
    emit(matched.text);
    if (matched.stopped) return result('stop');
    if (tokenIds.length >= input.maxNewTokens) {
      const tail = stops.push(streamer.flush());
      emit(tail.text);
      if (tail.stopped) return result('stop');
      emit(stops.flush());
      return result('length');
    }
    if (signal?.aborted) {
      emit(stops.flush());
      return result('cancelled');
    }
    const stepStarted = performance.now();
    logits = await decoder.step(token, decodePosition(decoder.pastLength, input.ropeDelta));
    decodeMs += performance.now() - stepStarted;
    decodeSteps++;
  }
}
