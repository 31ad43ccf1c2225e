/**
 * What every text decoder does alike, whatever runs its graphs: the tokens held in the cache,
 * prompts run in chunks with the image's rows scattered to their `<|image_pad|>` positions, a
 * reused prefix, and the checks on each call. How a run executes (onnxruntime-node sessions in
 * text-decoder.ts, onnxruntime-web with graph capture in captured-decoder.ts) is the subclass's.
 */
import type { Qwen3VLConfig } from '../checkpoint/config';
import type {
  DetachedSequence,
  KvRows,
  PrefillInput,
  SavedSequence,
  TextDecoder,
  TopLogits,
} from '../contracts';
import { EngineError } from '../errors';
import { stopRequested } from './stop-point';

/**
 * Long prompts are prefilled in chunks: attention scratch grows with chunk x context rather than
 * context^2 (GroupQueryAttention materialises the scores). Each chunk carries its own rows of the
 * visual and DeepStack inputs, so injection stays at exactly the visual positions. A stop takes
 * effect between chunks (a running ONNX run cannot be interrupted).
 */
export const DEFAULT_PREFILL_CHUNK = 1024;

/**
 * On the CPU a 1,024-token chunk of a 2B model runs for about 6.5 s (2-core VM), and a Stop
 * waited for it. In chunks of 256 a Stop waited 0.8 s on average and at most 1.45 s, against
 * 3.2 and 5.6 s in chunks of 1,024, and the prompt took as long (6.6 s against 6.7). In chunks
 * of 128, at most 0.78-0.81 s against 0.81-1.39 at 256, the prompt again as long (8.18-8.22 s
 * against 8.02-8.27, alternated runs): no longer than a stage of the vision tower of a large
 * screenshot (bench:engine --prefill-chunk, docs/bench/2026-11-27-cpu).
 */
export const CPU_PREFILL_CHUNK = 128;

export type Positions = readonly [ArrayLike<number>, ArrayLike<number>, ArrayLike<number>];

/** One decoder run: `ids` appended after the first `past` cached tokens. */
export interface DecoderRun {
  ids: number[];
  /** The three MRoPE streams of the run's tokens. */
  positions: Positions;
  /**
   * Prompt runs with image rows: those rows at their positions, zeros elsewhere ([S, hidden],
   * [taps, S, hidden]); absent where the run has none (zeros).
   */
  visual?: { embeds: Float32Array; deepstack: Float32Array };
  past: number;
  tokens: 'prompt' | 'generated';
  /** Rows of scores, from the last. */
  numLogits: number;
  /** Whether the host reads every logit or only each row's best. */
  scores: 'full' | 'top';
  /** A greedy step whose successor the decoder may queue (TextDecoder.stepGreedy). */
  ahead?: boolean;
}

/** A run's scores, read when wanted. */
export interface RunScores {
  /** The last `numLogits` rows' logits, [rows * vocab]. */
  logits(): Promise<Float32Array>;
  /** Each of those rows' `count` best logits. */
  top(count: number): Promise<TopLogits[]>;
}

export abstract class TokenDecoder implements TextDecoder {
  private past = 0;
  private started = false;
  /** Ids in the cache, position by position (only the first `past` are valid). */
  private ids: number[] = [];
  /** How many best logits extendTop returns per row (0: the graph cannot). */
  abstract readonly topLogitsPerRow: number;
  protected readonly taps: number;

  constructor(
    protected readonly config: Qwen3VLConfig,
    private readonly prefillChunk = DEFAULT_PREFILL_CHUNK,
  ) {
    this.taps = Math.max(1, config.vision.deepstackVisualIndexes.length);
  }

  /** Runs the graph: the cache's rows from `past` on are written, or already were. */
  protected abstract execute(run: DecoderRun): Promise<RunScores>;
  /** Forgets the cache's contents. */
  protected abstract resetCache(): void;

  /**
   * The cache's first `length` rows (host rows without a copy; GPU rows once downloaded), the
   * cache then emptied; undefined where the cache cannot hand them over.
   */
  protected detachCacheRows(_length: number): KvRows | Promise<KvRows> | undefined {
    return undefined;
  }

  /** Takes saved rows as the cache's first `length` rows. */
  protected loadCacheRows(_rows: KvRows, _length: number): void {
    throw new EngineError('bad_request', 'this decoder cannot take saved KV rows');
  }

  get pastLength(): number {
    return this.past;
  }

  get cachedIds(): readonly number[] {
    return this.ids;
  }

  reset(): void {
    this.resetCache();
    this.past = 0;
    this.ids = [];
    this.started = false;
  }

  detachSequence(): DetachedSequence | undefined {
    const ids = this.ids.slice(0, this.past);
    const rows = this.past > 0 ? this.detachCacheRows(this.past) : undefined;
    this.reset();
    return rows && { ids, rows };
  }

  restoreSequence(saved: SavedSequence): void {
    this.reset();
    if (saved.ids.length === 0) return;
    this.loadCacheRows(saved.rows, saved.ids.length);
    this.ids = [...saved.ids];
    this.past = saved.ids.length;
    this.started = true;
  }

  truncate(length: number): void {
    if (!Number.isInteger(length) || length < 0 || length > this.past) {
      throw new EngineError('bad_request', `cannot truncate a cache of ${this.past} to ${length}`);
    }
    // The cache keeps its rows; the next run's seqlens_k makes GroupQueryAttention write from
    // `length` on and ignore what lies beyond.
    this.past = length;
    this.ids.length = length;
  }

  async prefill(input: PrefillInput): Promise<Float32Array> {
    const ids = input.inputIds;
    const s = ids.length;
    if (s === 0) throw new EngineError('bad_request', 'prefill needs at least one token');
    if (input.positionIds.some((stream) => stream.length !== s)) {
      throw new EngineError('bad_request', `positionIds must hold 3 streams of ${s} positions`);
    }
    const reuse = input.reuse ?? 0;
    if (reuse > 0) return this.prefillAfter(input, reuse);
    this.reset();
    const imagePositions: number[] = [];
    ids.forEach((id, i) => id === this.config.imageTokenId && imagePositions.push(i));
    const rows = input.visual?.tokens ?? 0;
    if (imagePositions.length !== rows) {
      throw new EngineError(
        'bad_request',
        `the prompt has ${imagePositions.length} <|image_pad|> tokens but ${rows} visual rows were given`,
      );
    }
    return this.runPrompt(input, 0, imagePositions);
  }

  /**
   * Runs the prompt's tokens from `from` on in chunks, each with its rows of the visual inputs
   * (the image's rows at `imagePositions`, zeros elsewhere); the last chunk's logits.
   */
  private async runPrompt(
    input: PrefillInput,
    from: number,
    imagePositions: readonly number[],
  ): Promise<Float32Array> {
    const ids = input.inputIds;
    let scores: RunScores | undefined;
    for (let start = from; start < ids.length; start += this.prefillChunk) {
      const stopped = start > from ? await stopRequested(input.signal) : input.signal?.aborted;
      if (stopped) throw new EngineError('cancelled', 'the prefill was stopped');
      const end = Math.min(ids.length, start + this.prefillChunk);
      scores = await this.run({
        ids: ids.slice(start, end),
        positions: positionRange(input.positionIds, start, end),
        visual: this.scatterVisualRows(input.visual, imagePositions, start, end),
        past: this.past,
        tokens: 'prompt',
        numLogits: 1,
        scores: 'full',
      });
      input.onChunk?.(end - from, ids.length - from);
    }
    return scores!.logits();
  }

  /**
   * The visual and DeepStack inputs of the prompt's tokens start..end-1: the image's rows at its
   * `<|image_pad|>` positions (`imagePositions`, ascending), zeros elsewhere; undefined when
   * none of them is an image's. Built per chunk, straight from the vision output: a screenshot
   * prompt's inputs are tens of MB, and a whole-prompt copy cut into chunks afterwards wrote
   * them twice.
   */
  private scatterVisualRows(
    v: PrefillInput['visual'],
    imagePositions: readonly number[],
    start: number,
    end: number,
  ): DecoderRun['visual'] {
    const first = lowerBound(imagePositions, start);
    if (!v || first >= imagePositions.length || imagePositions[first] >= end) return undefined;
    const d = this.config.text.hiddenSize;
    const rows = end - start;
    const embeds = new Float32Array(rows * d);
    const deepstack = new Float32Array(this.taps * rows * d);
    for (let row = first; row < imagePositions.length; row++) {
      const at = imagePositions[row] - start;
      if (at >= rows) break;
      const source = [row * d, (row + 1) * d] as const;
      embeds.set(v.imageEmbeds.subarray(...source), at * d);
      v.deepstack.forEach((features, tap) =>
        deepstack.set(features.subarray(...source), (tap * rows + at) * d),
      );
    }
    return { embeds, deepstack };
  }

  /** Keeps the first `reuse` cached tokens and runs the text-only rest of the prompt. */
  private async prefillAfter(input: PrefillInput, reuse: number): Promise<Float32Array> {
    const ids = input.inputIds;
    if (!Number.isInteger(reuse) || reuse >= ids.length || reuse > this.past) {
      throw new EngineError(
        'bad_request',
        `cannot reuse ${reuse} cached tokens for a prompt of ${ids.length} (cache holds ${this.past})`,
      );
    }
    for (let i = 0; i < reuse; i++) {
      if (this.ids[i] !== ids[i]) {
        throw new EngineError('bad_request', `the cache differs from the prompt at token ${i}`);
      }
    }
    if (ids.indexOf(this.config.imageTokenId, reuse) >= 0) {
      throw new EngineError('bad_request', 'a reused prefix must cover every image of the prompt');
    }
    this.truncate(reuse);
    // The rest holds no image (checked above): its visual inputs are zeros.
    return this.runPrompt(input, reuse, []);
  }

  async extend(tokenIds: number[], position: number): Promise<Float32Array[]> {
    this.assertStarted('extend');
    if (tokenIds.length === 0) return [];
    const logits = await (await this.runTokens(tokenIds, position, 'full')).logits();
    const n = tokenIds.length;
    const vocab = logits.length / n;
    return Array.from({ length: n }, (_, i) => logits.subarray(i * vocab, (i + 1) * vocab));
  }

  /**
   * extend() returning only each row's topLogitsPerRow best logits: the host reads the few
   * blocks of logits that hold them instead of the vocabulary (greedy decoding and top-k
   * sampling need no more).
   */
  async extendTop(tokenIds: number[], position: number): Promise<TopLogits[]> {
    this.assertTopLogits();
    this.assertStarted('extendTop');
    if (tokenIds.length === 0) return [];
    return (await this.runTokens(tokenIds, position, 'top')).top(this.topLogitsPerRow);
  }

  async stepGreedy(tokenId: number, position: number): Promise<TopLogits> {
    this.assertTopLogits();
    this.assertStarted('stepGreedy');
    const scores = await this.runTokens([tokenId], position, 'top', true);
    return (await scores.top(this.topLogitsPerRow))[0];
  }

  async step(tokenId: number, position: number): Promise<Float32Array> {
    this.assertStarted('step');
    return (await this.runTokens([tokenId], position, 'full')).logits();
  }

  private assertTopLogits(): void {
    if (this.topLogitsPerRow === 0) {
      throw new EngineError('bad_request', 'this decoder graph has no best_block_* outputs');
    }
  }

  private assertStarted(caller: string): void {
    if (!this.started) {
      throw new EngineError('bad_request', `${caller}() called before prefill()`);
    }
  }

  /** A decode-time run of text tokens at positions position, position+1, ... */
  private runTokens(tokenIds: number[], position: number, scores: 'full' | 'top', ahead = false) {
    const n = tokenIds.length;
    const positions = Array.from({ length: n }, (_, i) => position + i);
    return this.run({
      ids: tokenIds,
      positions: [positions, positions, positions],
      past: this.past,
      tokens: 'generated',
      numLogits: n,
      scores,
      ahead,
    });
  }

  private async run(run: DecoderRun): Promise<RunScores> {
    const scores = await this.execute(run);
    this.ids.length = this.past;
    this.ids.push(...run.ids);
    this.past += run.ids.length;
    this.started = true;
    return scores;
  }
}

/** Positions start..end-1 of each of the three MRoPE streams (one prefill chunk). */
function positionRange(
  streams: PrefillInput['positionIds'],
  start: number,
  end: number,
): PrefillInput['positionIds'] {
  return [streams[0].slice(start, end), streams[1].slice(start, end), streams[2].slice(start, end)];
}

/** The first index of `sorted` whose value is at least `value`. */
function lowerBound(sorted: readonly number[], value: number): number {
  let [lo, hi] = [0, sorted.length];
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (sorted[mid] < value) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}
