/**
 * The text decoder on onnxruntime-node sessions, with its KV cache (kv-cache.ts): each run's
 * inputs built on the host (token ids, visual rows, the rows' rotary tables), the cache bound by
 * its form, the scores fetched to the host. Prompt chunking and the cache's bookkeeping are
 * token-decoder.ts's.
 */
import * as ort from 'onnxruntime-node';
import type { Qwen3VLConfig } from '../checkpoint/config';
import type { KvRows } from '../contracts';
import { DECODER_INPUTS, DECODER_OUTPUTS, topLogitsPerRow } from '../onnx/decoder-graph';
import { readTopLogits } from './best-logits';
import type { KvCache } from './kv-cache';
import { MropeTables } from './mrope';
import { type DecoderRun, type RunScores, TokenDecoder } from './token-decoder';

export { DEFAULT_PREFILL_CHUNK } from './token-decoder';

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

export class OnnxTextDecoder extends TokenDecoder {
  private readonly rope: MropeTables;
  private readonly attentionLengths: boolean;
  /** The graph applies MRoPE inside attention and wants its rows placed (rotary_pads). */
  private readonly rotaryInAttention: boolean;
  readonly topLogitsPerRow: number;
  private readonly prefillSession?: ort.InferenceSession;

  constructor(
    private readonly session: ort.InferenceSession,
    config: Qwen3VLConfig,
    private readonly cache: KvCache,
    options: TextDecoderOptions = {},
  ) {
    super(config, options.prefillChunk);
    this.prefillSession = options.prefillSession;
    this.rope = new MropeTables(config.text);
    // The GPU build's GroupQueryAttention takes the lengths; the CPU build's bias carries them.
    this.attentionLengths = session.inputNames.includes(DECODER_INPUTS.seqlens);
    this.rotaryInAttention = session.inputNames.includes(DECODER_INPUTS.rotaryPads);
    this.topLogitsPerRow = session.outputNames.includes(DECODER_OUTPUTS.bestBlocks)
      ? topLogitsPerRow(config.text.vocabSize)
      : 0;
  }

  protected resetCache(): void {
    this.cache.reset();
  }

  protected override detachCacheRows(length: number): KvRows | Promise<KvRows> | undefined {
    return this.cache.detachRows?.(length);
  }

  protected override loadCacheRows(rows: KvRows, length: number): void {
    if (!this.cache.loadRows) super.loadCacheRows(rows, length);
    else this.cache.loadRows(rows, length);
  }

  protected async execute(run: DecoderRun): Promise<RunScores> {
    const t = this.config.text;
    const { ids, past, numLogits } = run;
    const s = ids.length;
    const total = past + s;
    const { cos, sin } = this.rope.compute(run.positions);
    const visual = run.visual ?? {
      embeds: new Float32Array(s * t.hiddenSize),
      deepstack: new Float32Array(this.taps * s * t.hiddenSize),
    };
    const feeds: Record<string, ort.Tensor> = {
      [DECODER_INPUTS.ids]: new ort.Tensor('int64', BigInt64Array.from(ids, BigInt), [1, s]),
      [DECODER_INPUTS.visual]: new ort.Tensor('float32', visual.embeds, [1, s, t.hiddenSize]),
      [DECODER_INPUTS.deepstack]: new ort.Tensor('float32', visual.deepstack, [
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
        BigInt64Array.of(BigInt(run.scores === 'full' ? numLogits : 0)),
        [1],
      ),
    };
    if (this.attentionLengths) {
      feeds[DECODER_INPUTS.seqlens] = new ort.Tensor('int32', Int32Array.of(total - 1), [1]);
      feeds[DECODER_INPUTS.total] = new ort.Tensor('int32', Int32Array.of(total), []);
    }
    await this.cache.makeRoom?.(total);
    // Every output is fetched: onnxruntime-node refuses a subset when some stay in GPU memory.
    const fetches = this.cache.bind(feeds, past, s);
    if (this.rotaryInAttention) feeds[DECODER_INPUTS.rotaryPads] = this.rotaryPads(feeds, past, s);
    const session = run.tokens === 'prompt' ? (this.prefillSession ?? this.session) : this.session;
    const result = fetches
      ? await session.run(feeds, { ...fetches, ...SCORE_FETCHES })
      : await session.run(feeds);
    this.cache.commit(result);
    return {
      logits: async () => (await result[DECODER_OUTPUTS.logits].getData()) as Float32Array,
      top: (count) => readTopLogits(result, count, t.vocabSize),
    };
  }

  /**
   * Where this run's S table rows go in the cos/sin cache attention's rotary reads: at the rows
   * of their cache positions (past..past+S-1), in a table as long as the longest KV buffer
   * attention sees (GroupQueryAttention wants a row for each, used or not).
   */
  private rotaryPads(feeds: Record<string, ort.Tensor>, past: number, s: number): ort.Tensor {
    let rows = past + s;
    for (let l = 0; l < this.config.text.numLayers; l++) {
      rows = Math.max(rows, feeds[DECODER_INPUTS.pastKey(l)].dims[2] + s);
    }
    const pads = [past, 0, rows - past - s, 0].map(BigInt);
    return new ort.Tensor('int64', BigInt64Array.from(pads), [4]);
  }
}

const SCORE_FETCHES = {
  [DECODER_OUTPUTS.logits]: null,
  [DECODER_OUTPUTS.bestBlocks]: null,
  [DECODER_OUTPUTS.bestBlockLogits]: null,
};
