/**
 * A text decoder that times every plain decode step (one token, whole row or best logits) and
 * says when a prefill starts, for bench:engine. On a shared machine the fastest step shows what
 * the hardware does when nothing else runs, the mean what the run got.
 */
import type { TextDecoder } from '../../server/engine/contracts';

export interface DecoderTiming {
  /** The decoder to run: `decoder`'s calls, timed. */
  decoder: TextDecoder;
  /** Milliseconds of each plain step so far (the caller empties it between measurements). */
  stepMs: number[];
  /** Told when a prefill starts (the Stop measurement times its stop from there). */
  onPrefill?: () => void;
}

export function timeDecoder(decoder: TextDecoder): DecoderTiming {
  const timing: DecoderTiming = { decoder, stepMs: [] };
  const timed = async <T>(tokens: number, run: () => Promise<T>): Promise<T> => {
    const started = performance.now();
    const result = await run();
    if (tokens === 1) timing.stepMs.push(performance.now() - started);
    return result;
  };
  const timedDecoder: TextDecoder = {
    prefill: (input) => {
      timing.onPrefill?.();
      return decoder.prefill(input);
    },
    step: (token, position) => timed(1, () => decoder.step(token, position)),
    extend: (tokens, position) => decoder.extend(tokens, position),
    extendTop: (tokens, position) =>
      timed(tokens.length, () => decoder.extendTop(tokens, position)),
    // Pipelined where the decoder can (graph capture): a step's time is then the gap between
    // two tokens.
    stepGreedy:
      decoder.stepGreedy &&
      ((token, position) => timed(1, () => decoder.stepGreedy!(token, position))),
    get topLogitsPerRow() {
      return decoder.topLogitsPerRow;
    },
    truncate: (length) => decoder.truncate(length),
    reset: () => decoder.reset(),
    get pastLength() {
      return decoder.pastLength;
    },
    get cachedIds() {
      return decoder.cachedIds;
    },
    detachSequence: () => decoder.detachSequence?.(),
    restoreSequence: decoder.restoreSequence && ((saved) => decoder.restoreSequence!(saved)),
  };
  timing.decoder = timedDecoder;
  return timing;
}
