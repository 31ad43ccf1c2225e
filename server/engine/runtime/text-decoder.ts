/**
 * The text decoder with its KV cache (kv-cache.ts). Prefill runs the prompt (visual rows and
 * DeepStack features scattered to the `<|image_pad|>` positions); each step appends one token.
 */
import * as ort from 'onnxruntime-node';
import type { Qwen3VLConfig } from '../checkpoint/config';
import type { PrefillInput, TextDecoder, TopLogits } from '../contracts';
import { EngineError } from '../errors';
import { DECODER_INPUTS, DECODER_OUTPUTS, topLogitsPerRow } from '../onnx/decoder-graph';
import { readTopLogits } from './best-logits';
import type { KvCache } from './kv-cache';
import { MropeTables } from './mrope';

/**
 * Long prompts are prefilled in chunks: attention scratch grows with chunk x context rather than
 * context^2 (GroupQueryAttention materialises the scores). Each chunk carries its own rows of the
 * visual and DeepStack inputs, so injection stays at exactly the visual positions.
 */
export const DEFAULT_PREFILL_CHUNK = 1024;

export interface TextDecoderOptions {
  /** Longest run of a prefill (default DEFAULT_PREFILL_CHUNK). */
  prefillChunk?: number;
  /**
   * A second graph of the same decoder for prompts (the CPU int4 build's 8-bit prefill
   * decoder): same inputs, outputs and cache, faster where a run is compute-bound. Every prompt
   * run goes there, however short (a prompt's last token re-run after a reused prefix gets the
   * logits a cold prefill gives); generated tokens (steps, speculative verification, whose
   * costs run-cost.ts holds) stay on the main graph.
   */
  prefillSession?: ort.InferenceSession;
}

export class OnnxTextDecoder implements TextDecoder {
  private past = 0;
  private started = false;
  /** Ids in the cache, position by position (only the first `past` are valid). */
  private ids: number[] = [];
  private readonly rope: MropeTables;
  private readonly taps: number;
  private readonly attentionLengths: boolean;
  /** The graph applies MRoPE inside attention and wants its rows placed (rotary_pads). */
  private readonly rotaryInAttention: boolean;
  /** How many best logits extendTop returns per row (0: the graph has no best_block_* outputs). */
  readonly topLogitsPerRow: number;

  private readonly prefillChunk: number;
  private readonly prefillSession?: ort.InferenceSession;

  constructor(
    private readonly session: ort.InferenceSession,
    private readonly config: Qwen3VLConfig,
    private readonly cache: KvCache,
    options: TextDecoderOptions = {},
  ) {
    this.prefillChunk = options.prefillChunk ?? DEFAULT_PREFILL_CHUNK;
    this.prefillSession = options.prefillSession;
    this.rope = new MropeTables(config.text);
    // The GPU build's GroupQueryAttention takes the lengths; the CPU build's bias carries them.
    this.attentionLengths = session.inputNames.includes(DECODER_INPUTS.seqlens);
    this.rotaryInAttention = session.inputNames.includes(DECODER_INPUTS.rotaryPads);
    this.taps = Math.max(1, config.vision.deepstackVisualIndexes.length);
    this.topLogitsPerRow = session.outputNames.includes(DECODER_OUTPUTS.bestBlocks)
      ? topLogitsPerRow(config.text.vocabSize)
      : 0;
  }

  get pastLength(): number {
    return this.past;
  }

  get cachedIds(): readonly number[] {
    return this.ids;
  }

  reset(): void {
    this.cache.reset();
    this.past = 0;
    this.ids = [];
    this.started = false;
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
    let logits: Float32Array | undefined;
    for (let start = from; start < ids.length; start += this.prefillChunk) {
      const end = Math.min(ids.length, start + this.prefillChunk);
      const { visual, deepstack } = this.scatterVisualRows(
        input.visual,
        imagePositions,
        start,
        end,
      );
      logits = await readLogits(
        await this.run(
          ids.slice(start, end),
          positionRange(input.positionIds, start, end),
          visual,
          deepstack,
          'prompt',
        ),
      );
    }
    return logits!;
  }

  /**
   * The visual and DeepStack inputs of the prompt's tokens start..end-1: the image's rows at its
   * `<|image_pad|>` positions (`imagePositions`, ascending), zeros elsewhere. Built per chunk,
   * straight from the vision output: a screenshot prompt's inputs are tens of MB, and a
   * whole-prompt copy cut into chunks afterwards wrote them twice.
   */
  private scatterVisualRows(
    v: PrefillInput['visual'],
    imagePositions: readonly number[],
    start: number,
    end: number,
  ): { visual: Float32Array; deepstack: Float32Array } {
    const d = this.config.text.hiddenSize;
    const rows = end - start;
    const visual = new Float32Array(rows * d);
    const deepstack = new Float32Array(this.taps * rows * d);
    if (!v) return { visual, deepstack };
    for (let row = lowerBound(imagePositions, start); row < imagePositions.length; row++) {
      const at = imagePositions[row] - start;
      if (at >= rows) break;
      const source = [row * d, (row + 1) * d] as const;
      visual.set(v.imageEmbeds.subarray(...source), at * d);
      v.deepstack.forEach((features, tap) =>
        deepstack.set(features.subarray(...source), (tap * rows + at) * d),
      );
    }
    return { visual, deepstack };
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
    const logits = await readLogits(await this.runTokens(tokenIds, position, 'full'));
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
    if (this.topLogitsPerRow === 0) {
      throw new EngineError('bad_request', 'this decoder graph has no best_block_* outputs');
    }
    this.assertStarted('extendTop');
    if (tokenIds.length === 0) return [];
    const result = await this.runTokens(tokenIds, position, 'top');
    return readTopLogits(result, this.topLogitsPerRow, this.config.text.vocabSize);
  }

  async step(tokenId: number, position: number): Promise<Float32Array> {
    this.assertStarted('step');
    return readLogits(await this.runTokens([tokenId], position, 'full'));
  }

  private assertStarted(caller: string): void {
    if (!this.started) {
      throw new EngineError('bad_request', `${caller}() called before prefill()`);
    }
  }

  /** A decode-time run of text tokens at positions position, position+1, ... */
  private runTokens(
    tokenIds: number[],
    position: number,
    scores: ScoreOutputs,
  ): Promise<ort.InferenceSession.OnnxValueMapType> {
    const n = tokenIds.length;
    const d = this.config.text.hiddenSize;
    const positions = Array.from({ length: n }, (_, i) => position + i);
    return this.run(
      tokenIds,
      [positions, positions, positions],
      new Float32Array(n * d),
      new Float32Array(this.taps * n * d),
      'generated',
      n,
      scores,
    );
  }

  private async run(
    ids: number[],
    positions: readonly [ArrayLike<number>, ArrayLike<number>, ArrayLike<number>],
    visual: Float32Array,
    deepstack: Float32Array,
    tokens: 'prompt' | 'generated',
    numLogits = 1,
    scores: ScoreOutputs = 'full',
  ): Promise<ort.InferenceSession.OnnxValueMapType> {
    const t = this.config.text;
    const s = ids.length;
    const total = this.past + s;
    const { cos, sin } = this.rope.compute(positions);
    const feeds: Record<string, ort.Tensor> = {
      [DECODER_INPUTS.ids]: new ort.Tensor('int64', BigInt64Array.from(ids, BigInt), [1, s]),
      [DECODER_INPUTS.visual]: new ort.Tensor('float32', visual, [1, s, t.hiddenSize]),
      [DECODER_INPUTS.deepstack]: new ort.Tensor('float32', deepstack, [
        this.taps,
        1,
        s,
        t.hiddenSize,
      ]),
      [DECODER_INPUTS.cos]: new ort.Tensor('float32', cos, [s, t.headDim / 2]),
      [DECODER_INPUTS.sin]: new ort.Tensor('float32', sin, [s, t.headDim / 2]),

      [DECODER_INPUTS.numLogits]: new ort.Tensor('int64', BigInt64Array.of(BigInt(numLogits)), [1]),
      [DECODER_INPUTS.returnedLogits]: new ort.Tensor(
        'int64',
        BigInt64Array.of(BigInt(scores === 'full' ? numLogits : 0)),
        [1],
      ),
    };
    if (this.attentionLengths) {
      feeds[DECODER_INPUTS.seqlens] = new ort.Tensor('int32', Int32Array.of(total - 1), [1]);
      feeds[DECODER_INPUTS.total] = new ort.Tensor('int32', Int32Array.of(total), []);
    }
    await this.cache.makeRoom?.(total);
    // Every output is fetched: onnxruntime-node refuses a subset when some stay in GPU memory.
    const fetches = this.cache.bind(feeds, this.past, s);
    if (this.rotaryInAttention) feeds[DECODER_INPUTS.rotaryPads] = this.rotaryPads(feeds, s);
    const session = tokens === 'prompt' ? (this.prefillSession ?? this.session) : this.session;
    const result = fetches
      ? await session.run(feeds, { ...fetches, ...SCORE_FETCHES })
      : await session.run(feeds);
    this.cache.commit(result);
    this.ids.length = this.past;
    this.ids.push(...ids);
    this.past = total;
    this.started = true;
    return result;
  }

  /**
   * Where this run's S table rows go in the cos/sin cache attention's rotary reads: at the rows
   * of their cache positions (past..past+S-1), in a table as long as the longest KV buffer
   * attention sees (GroupQueryAttention wants a row for each, used or not).
   */
  private rotaryPads(feeds: Record<string, ort.Tensor>, s: number): ort.Tensor {
    let rows = this.past + s;
    for (let l = 0; l < this.config.text.numLayers; l++) {
      rows = Math.max(rows, feeds[DECODER_INPUTS.pastKey(l)].dims[2] + s);
    }
    const pads = [this.past, 0, rows - this.past - s, 0].map(BigInt);
    return new ort.Tensor('int64', BigInt64Array.from(pads), [4]);
  }
}

/** Which scores a run brings back: every logit and the best, or the best only (extendTop). */
type ScoreOutputs = 'full' | 'top';

const SCORE_FETCHES = {
  [DECODER_OUTPUTS.logits]: null,
  [DECODER_OUTPUTS.bestBlocks]: null,
  [DECODER_OUTPUTS.bestBlockLogits]: null,
};

async function readLogits(result: ort.InferenceSession.OnnxValueMapType): Promise<Float32Array> {
  return (await result[DECODER_OUTPUTS.logits].getData()) as Float32Array;
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
