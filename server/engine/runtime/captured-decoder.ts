/**
 * The text decoder with WebGPU graph capture, on onnxruntime-web over Dawn's Node binding
 * (ort-web-in-node.ts): onnxruntime-node 1.30 cannot capture, and a decode step there spends
 * most of its time recording and submitting ~250 dispatches (docs/bench/2026-11-27-h200).
 *
 * A graph-capture build (build-graphs.ts `capture`) has two or three forms of the decoder over
 * one KV cache of `capacity` rows per layer and K/V, bound in place (in-place-sessions.ts):
 * - the step, one token with every shape fixed, recorded on its first run and replayed after
 *   (its token and lengths written into its own buffers, its scores read from its own);
 * - the prompt form, any number of tokens: prompts, reused-prefix suffixes and speculative
 *   verification runs, not captured;
 * - optionally a verification run of a fixed number of tokens, captured like the step: a
 *   speculative run of fewer tokens is padded (attention is causal, so the padding changes no
 *   real row; its cache rows lie beyond the cache's length and are overwritten later).
 * Rotary tables are rows of one table indexed by cache row; a run writes the rows of its
 * positions where they differ from what the table holds (an image's rows, then text).
 * Greedy steps are pipelined (stepAhead): each queues the next on its own argmax before the
 * host has read it.
 */
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import type * as Ort from 'onnxruntime-web';
import type { Qwen3VLConfig } from '../checkpoint/config';
import type { TopLogits } from '../contracts';
import { EngineError } from '../errors';
import { topLogitsPerRow } from '../onnx/decoder-graph';
import {
  InPlaceBindings,
  StaticRun,
  createInPlaceSession,
  runPromptForm,
} from './in-place-sessions';
import type { CacheType } from './kv-cache';
import { MropeTables } from './mrope';
import { type DecoderRun, type Positions, type RunScores, TokenDecoder } from './token-decoder';

export interface CapturedDecoderGraphs {
  promptForm: string;
  step: string;
  /** The captured verification run's graph, with its rows. */
  verify?: { path: string; rows: number };
  /** The .data file beside them that both read their weights from. */
  dataFile: string;
}

export class CapturedTextDecoder extends TokenDecoder {
  readonly topLogitsPerRow: number;
  private readonly rope: MropeTables;
  /** Per MRoPE stream, the position each rotary table row holds (NaN: not written yet). */
  private readonly tableRows: Float64Array[];
  /** The greedy step queued ahead by the last stepGreedy (see stepAhead). */
  private queued?: {
    past: number;
    position: number;
    /** Its input: the last step's argmax. */
    token: Promise<number>;
    scores: Promise<TopLogits[]>;
  };
  /** The staging slot of the latest read (queued reads alternate between two). */
  private slot = 0;

  private constructor(
    config: Qwen3VLConfig,
    readonly capacity: number,
    private readonly promptForm: Ort.InferenceSession,
    /** The step's session, and the verification run's if any. */
    private readonly staticSessions: Ort.InferenceSession[],
    private readonly stepRun: StaticRun,
    private readonly verifyRun: { run: StaticRun; rows: number } | undefined,
    private readonly bindings: InPlaceBindings,
    prefillChunk?: number,
  ) {
    super(config, prefillChunk);
    this.rope = new MropeTables(config.text);
    this.tableRows = [0, 1, 2].map(() => new Float64Array(capacity).fill(NaN));
    this.topLogitsPerRow = topLogitsPerRow(config.text.vocabSize);
  }

  static async open(
    graphs: CapturedDecoderGraphs,
    config: Qwen3VLConfig,
    capacity: number,
    cacheType: CacheType,
    options: { prefillChunk?: number } = {},
  ): Promise<CapturedTextDecoder> {
    const { dataFile } = graphs;
    // Read once for both sessions (each copies it into WebAssembly memory and on to the GPU).
    let weights: Buffer | undefined = readFileSync(join(dirname(graphs.promptForm), dataFile));
    const promptForm = await createInPlaceSession(graphs.promptForm, {
      capture: false,
      dataFile,
      weights,
    });
    const staticSessions: Ort.InferenceSession[] = [];
    let bindings: InPlaceBindings | undefined;
    try {
      const captured = (path: string) =>
        createInPlaceSession(path, { capture: true, dataFile, weights });
      staticSessions.push(await captured(graphs.step));
      if (graphs.verify) staticSessions.push(await captured(graphs.verify.path));
      weights = undefined;
      bindings = await InPlaceBindings.create(config.text, capacity, cacheType, true);
      const step = await StaticRun.open(staticSessions[0], bindings, config.text, 1, true);
      const verify = graphs.verify && {
        run: await StaticRun.open(
          staticSessions[1],
          bindings,
          config.text,
          graphs.verify.rows,
          true,
        ),
        rows: graphs.verify.rows,
      };
      return new CapturedTextDecoder(
        config,
        capacity,
        promptForm,
        staticSessions,
        step,
        verify,
        bindings,
        options.prefillChunk,
      );
    } catch (error) {
      await promptForm.release();
      for (const session of staticSessions) await session.release();
      bindings?.destroy();
      throw error;
    }
  }

  async dispose(): Promise<void> {
    await this.dropQueued();
    await this.promptForm.release();
    for (const session of this.staticSessions) await session.release();
    this.bindings.destroy();
  }

  protected resetCache(): void {
    // Rows are overwritten from the next run's position on; the rotary table stays as it is.
  }

  protected async execute(run: DecoderRun): Promise<RunScores> {
    const end = run.past + run.ids.length;
    if (end > this.capacity) {
      throw new EngineError(
        'bad_request',
        `the conversation needs ${end} positions but the graph-captured decoder's cache holds ${this.capacity}: start a new conversation, or load the model with a larger capture capacity`,
      );
    }
    const s = run.ids.length;
    if (run.ahead && s === 1) return this.stepAhead(run);
    await this.dropQueued();
    if (run.tokens === 'generated' && s === 1) {
      this.placeRotaryRows(run.past, run.positions);
      await this.stepRun.run(run.ids, run.past);
      return {
        logits: () => this.stepRun.readLogits(),
        top: (count) => this.stepRun.readTop(count),
      };
    }
    // Speculative verification runs, and text-only prompt runs as short (a refinement's new
    // message after the reused prefix), through the captured run where they fit.
    const verify = this.verifyRun;
    if (
      verify &&
      s <= verify.rows &&
      run.past + verify.rows <= this.capacity &&
      !run.visual &&
      consecutiveText(run.positions)
    ) {
      return this.runPadded(verify, run);
    }
    this.placeRotaryRows(run.past, run.positions);
    return this.runPromptForm(run);
  }

  /**
   * A run of s text tokens through the captured run of `rows`: padded with the last token at the
   * next text positions; the scores of the run's last numLogits real rows.
   */
  private async runPadded(
    verify: { run: StaticRun; rows: number },
    run: DecoderRun,
  ): Promise<RunScores> {
    const s = run.ids.length;
    const ids = [...run.ids, ...Array<number>(verify.rows - s).fill(run.ids[s - 1])];
    const start = run.positions[0][0];
    const text = Array.from({ length: verify.rows }, (_, i) => start + i);
    this.placeRotaryRows(run.past, [text, text, text]);
    await verify.run.run(ids, run.past);
    const vocab = this.config.text.vocabSize;
    const from = s - run.numLogits;
    return {
      logits: async () => (await verify.run.readLogits()).subarray(from * vocab, s * vocab),
      top: async (count) => (await verify.run.readTop(count)).slice(from, s),
    };
  }

  /**
   * A greedy step (TextDecoder.stepGreedy): the step queued by the last one when it is this one
   * (same row, position and token), else run now; then the next step queued on this one's
   * argmax, copied to its input on the GPU, before this one's scores reach the host. Each
   * step's scores are copied out in queue order, to alternating staging buffers.
   */
  private async stepAhead(run: DecoderRun): Promise<RunScores> {
    const position = run.positions[0][0];
    const queued = this.queued;
    this.queued = undefined;
    let scores: Promise<TopLogits[]>;
    if (
      queued &&
      queued.past === run.past &&
      queued.position === position &&
      (await queued.token) === run.ids[0]
    ) {
      scores = queued.scores;
    } else {
      if (queued) await queued.scores.catch(() => undefined);
      this.placeRotaryRows(run.past, run.positions);
      await this.stepRun.run(run.ids, run.past);
      scores = this.stepRun.readTop(this.topLogitsPerRow, (this.slot ^= 1));
    }
    const next = { past: run.past + 1, position: position + 1 };
    if (next.past < this.capacity) {
      this.placeRotaryRows(next.past, [[next.position], [next.position], [next.position]]);
      await this.stepRun.run('chosen', next.past);
      this.queued = {
        ...next,
        token: scores.then((rows) => rows[0].ids[0]),
        scores: this.stepRun.readTop(this.topLogitsPerRow, (this.slot ^= 1)),
      };
      // A step never taken is read anyway (dropQueued): its failure is not this run's.
      this.queued.scores.catch(() => undefined);
    }
    return {
      logits: () => Promise.reject(new Error('a greedy step returns its best logits only')),
      top: async (count) =>
        (await scores).map((row) => ({
          ids: row.ids.slice(0, count),
          logits: row.logits.slice(0, count),
        })),
    };
  }

  /** Waits for a queued step's scores to be read (their staging buffer is free again). */
  private async dropQueued(): Promise<void> {
    const queued = this.queued;
    this.queued = undefined;
    if (queued) await queued.scores.catch(() => undefined);
  }

  /** Writes the table rows of cache rows past.. whose positions differ from what they hold. */
  private placeRotaryRows(past: number, positions: Positions): void {
    const n = positions[0].length;
    let [first, last] = [-1, -1];
    for (let i = 0; i < n; i++) {
      if (positions.some((stream, k) => this.tableRows[k][past + i] !== stream[i])) {
        if (first < 0) first = i;
        last = i;
      }
    }
    if (first < 0) return;
    const rows = positions.map((stream) =>
      Float64Array.from({ length: last + 1 - first }, (_, i) => stream[first + i]),
    ) as unknown as Positions;
    const { cos, sin } = this.rope.compute(rows);
    this.bindings.writeTable(past + first, cos, sin);
    rows.forEach((stream, k) => this.tableRows[k].set(stream as Float64Array, past + first));
  }

  private async runPromptForm(run: DecoderRun): Promise<RunScores> {
    const scores = await runPromptForm(this.promptForm, this.bindings, this.config, {
      ...run,
      returnedLogits: run.scores === 'full' ? run.numLogits : 0,
    });
    return { logits: async () => scores.logits, top: async (count) => scores.top(count) };
  }
}

/** Whether the three MRoPE streams are one run of consecutive positions (text tokens). */
function consecutiveText(positions: Positions): boolean {
  const start = positions[0][0];
  for (let i = 0; i < positions[0].length; i++) {
    if (positions.some((stream) => stream[i] !== start + i)) return false;
  }
  return true;
}
