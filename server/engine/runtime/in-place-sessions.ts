/**
 * onnxruntime-web sessions of the decoder's in-place forms (decoder-graph.ts `inPlaceCache`)
 * and what they share: the KV cache, one GPU buffer per layer and K/V fed as past_* and fetched
 * as present_* (GroupQueryAttention appends in place), and the rotary table, a row per cache
 * position. Every session of one decoder binds the same buffers, so a captured run keeps its
 * bindings from run to run and sees what the others wrote.
 */
import { readFileSync, statSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import type * as Ort from 'onnxruntime-web';
import type { Qwen3VLConfig, TextConfig } from '../checkpoint/config';
import type { TopLogits } from '../contracts';
import { EngineError } from '../errors';
import {
  DECODER_INPUTS,
  DECODER_OUTPUTS,
  LOGIT_BLOCK,
  keptLogitBlocks,
} from '../onnx/decoder-graph';
import { topLogitsFromBlocks } from './best-logits';
import { type GpuBuffer, GpuTensors, keepRegistered, loadOrtWeb } from './ort-web-in-node';

/**
 * Weights onnxruntime-web can load: they pass through its 32-bit WebAssembly memory (4 GB, also
 * holding the graph and the runtime) on their way to the GPU.
 */
export const WASM_WEIGHTS_LIMIT = 3.5e9;

/**
 * A WebGPU session of an in-place form. `dataFile`: the file its weights are in, beside it
 * (default its own PATH.data); `weights`: that file's bytes when already read (the two forms of
 * a graph-capture build share one file).
 */
export async function createInPlaceSession(
  path: string,
  options: { capture: boolean; dataFile?: string; weights?: Buffer },
): Promise<Ort.InferenceSession> {
  const dataFile = options.dataFile ?? `${basename(path)}.data`;
  const dataPath = join(dirname(path), dataFile);
  const size = options.weights?.byteLength ?? statSync(dataPath).size;
  if (size > WASM_WEIGHTS_LIMIT) {
    throw new EngineError(
      'bad_request',
      `${basename(path)} has ${(size / 1e9).toFixed(1)} GB of weights: onnxruntime-web loads them into its 4 GB WebAssembly memory, which cannot hold more than about ${WASM_WEIGHTS_LIMIT / 1e9} GB (a 2B or 4B model in int4 fits; otherwise run without graph capture)`,
    );
  }
  return loadOrtWeb().InferenceSession.create(readFileSync(path), {
    executionProviders: ['webgpu'],
    graphOptimizationLevel: 'all',
    // The prompt form leaves shape arithmetic on the CPU, which onnxruntime warns about.
    logSeverityLevel: 3,
    enableGraphCapture: options.capture,
    // A captured run's outputs are bound to buffers of its own; the prompt form's scores come
    // back to the host (its cache outputs are bound, so written in place either way).
    preferredOutputLocation: options.capture ? 'gpu-buffer' : 'cpu',
    externalData: [{ path: dataFile, data: options.weights ?? readFileSync(dataPath) }],
  });
}

/** The buffers every session of one decoder binds alike (see the file's comment). */
export class InPlaceBindings {
  /** past_* and present_* names, and rope_cos/rope_sin, to their tensors. */
  readonly tensors: Record<string, Ort.Tensor> = {};
  private readonly table: { cos: GpuBuffer; sin: GpuBuffer };

  private constructor(
    readonly gpu: GpuTensors,
    text: TextConfig,
    readonly capacity: number,
    cacheType: 'float16' | 'float32',
    private readonly buffers: GpuBuffer[] = [],
  ) {
    const cacheDims = [1, text.numKvHeads, capacity, text.headDim];
    for (let l = 0; l < text.numLayers; l++) {
      for (const [past, present] of [
        [DECODER_INPUTS.pastKey(l), DECODER_OUTPUTS.presentKey(l)],
        [DECODER_INPUTS.pastValue(l), DECODER_OUTPUTS.presentValue(l)],
      ]) {
        const cache = gpu.create(cacheType, cacheDims);
        this.tensors[past] = this.tensors[present] = cache.tensor;
        buffers.push(cache.buffer);
      }
    }
    const tableRow = (name: string) => {
      const { tensor, buffer } = gpu.create('float32', [capacity, text.headDim / 2]);
      this.tensors[name] = tensor;
      buffers.push(buffer);
      return buffer;
    };
    this.table = { cos: tableRow(DECODER_INPUTS.cos), sin: tableRow(DECODER_INPUTS.sin) };
  }

  /**
   * Made after a first session, which creates onnxruntime-web's GPU device. `captured`: a
   * captured session will bind them (they stay registered across its replays).
   */
  static async create(
    text: TextConfig,
    capacity: number,
    cacheType: 'float16' | 'float32',
    captured: boolean,
  ): Promise<InPlaceBindings> {
    const ort = loadOrtWeb();
    const bindings = new InPlaceBindings(await GpuTensors.of(ort), text, capacity, cacheType);
    if (captured) await keepRegistered(ort, bindings.buffers);
    return bindings;
  }

  /** Writes rotary table rows from `row` on (cos and sin [rows, headDim/2]). */
  writeTable(row: number, cos: Float32Array, sin: Float32Array): void {
    const rowBytes = this.tensors[DECODER_INPUTS.cos].dims[1] * 4;
    this.gpu.write(this.table.cos, cos, row * rowBytes);
    this.gpu.write(this.table.sin, sin, row * rowBytes);
  }

  /** A session's feeds and fetches among these tensors, by its input and output names. */
  bindingsOf(session: Ort.InferenceSession): {
    feeds: Record<string, Ort.Tensor>;
    fetches: Record<string, Ort.Tensor>;
  } {
    const pick = (names: readonly string[]) =>
      Object.fromEntries(
        names.filter((name) => name in this.tensors).map((name) => [name, this.tensors[name]]),
      );
    return { feeds: pick(session.inputNames), fetches: pick(session.outputNames) };
  }

  /** Destroys every buffer (after the sessions that bound them are released). */
  destroy(): void {
    this.gpu.destroy();
  }
}

/**
 * A session of a static form (every shape fixed: `rows` generated tokens a run) over the shared
 * bindings, with input and output buffers of its own: the host writes a run's tokens and
 * lengths into them and reads its scores back, so a captured run is replayed as recorded.
 */
export class StaticRun {
  private constructor(
    private readonly session: Ort.InferenceSession,
    private readonly gpu: GpuTensors,
    private readonly rows: number,
    private readonly vocabSize: number,
    private readonly io: Record<StaticIo, { tensor: Ort.Tensor; buffer: GpuBuffer }>,
    private readonly feeds: Record<string, Ort.Tensor>,
    private readonly fetches: Record<string, Ort.Tensor>,
  ) {}

  static async open(
    session: Ort.InferenceSession,
    bindings: InPlaceBindings,
    text: TextConfig,
    rows: number,
    captured: boolean,
  ): Promise<StaticRun> {
    const { gpu } = bindings;
    const kept = keptLogitBlocks(text.vocabSize);
    const io: Record<StaticIo, { tensor: Ort.Tensor; buffer: GpuBuffer }> = {
      ids: gpu.create('int64', [1, rows]),
      seqlens: gpu.create('int32', [1]),
      total: gpu.create('int32', []),
      logits: gpu.create('float32', [rows, text.vocabSize]),
      blocks: gpu.create('int64', [rows, kept, 1]),
      blockLogits: gpu.create('float32', [rows, kept, LOGIT_BLOCK]),
      chosen: gpu.create('int64', [rows, 1]),
    };
    const { feeds, fetches } = bindings.bindingsOf(session);
    Object.assign(feeds, {
      [DECODER_INPUTS.ids]: io.ids.tensor,
      [DECODER_INPUTS.seqlens]: io.seqlens.tensor,
      [DECODER_INPUTS.total]: io.total.tensor,
    });
    Object.assign(fetches, {
      [DECODER_OUTPUTS.logits]: io.logits.tensor,
      [DECODER_OUTPUTS.bestBlocks]: io.blocks.tensor,
      [DECODER_OUTPUTS.bestBlockLogits]: io.blockLogits.tensor,
      [DECODER_OUTPUTS.nextToken]: io.chosen.tensor,
    });
    if (captured) {
      await keepRegistered(
        loadOrtWeb(),
        Object.values(io).map((x) => x.buffer),
      );
    }
    return new StaticRun(session, gpu, rows, text.vocabSize, io, feeds, fetches);
  }

  /**
   * Queues a run of `tokens` at cache positions position, position+1, ... ('chosen': the token
   * the last run chose, still on the GPU; one-row forms).
   */
  async run(tokens: number[] | 'chosen', position: number): Promise<void> {
    const { gpu, io } = this;
    if (tokens === 'chosen') gpu.copy(io.chosen.buffer, io.ids.buffer, 8);
    else gpu.write(io.ids.buffer, BigInt64Array.from(tokens, BigInt));
    gpu.write(io.seqlens.buffer, Int32Array.of(position + this.rows - 1));
    gpu.write(io.total.buffer, Int32Array.of(position + this.rows));
    await this.session.run(this.feeds, this.fetches);
  }

  /**
   * Each row's `count` best logits (waits for the run; copied out at once, so a run queued
   * meanwhile does not overwrite them; reads outstanding together take different `slot`s).
   */
  async readTop(count: number, slot = 0): Promise<TopLogits[]> {
    const kept = keptLogitBlocks(this.vocabSize);
    const [blockIds, values] = await this.gpu.read(
      [this.io.blocks.buffer, this.io.blockLogits.buffer],
      [this.rows * kept * 8, this.rows * kept * LOGIT_BLOCK * 4],
      slot,
    );
    return topLogitsFromBlocks(
      new BigInt64Array(blockIds),
      new Float32Array(values),
      kept,
      count,
      this.vocabSize,
    );
  }

  /** Every row's logits, [rows * vocab] (waits for the run). */
  async readLogits(): Promise<Float32Array> {
    const [logits] = await this.gpu.read([this.io.logits.buffer], [this.rows * this.vocabSize * 4]);
    return new Float32Array(logits);
  }

  /** The last run's chosen token, copied now; resolves once the queued work is done. */
  async readChosenSoon(): Promise<number> {
    return Number(new BigInt64Array(await this.gpu.readSoon(this.io.chosen.buffer, 8))[0]);
  }
}

type StaticIo = 'ids' | 'seqlens' | 'total' | 'logits' | 'blocks' | 'blockLogits' | 'chosen';

/** A run of the prompt form (decoder-graph.ts `inPlaceCache` without `staticRows`). */
export interface PromptFormRun {
  ids: number[];
  /** Cached tokens before it: the run writes the shared cache from there on. */
  past: number;
  /** The image rows ([S, hidden], [taps, S, hidden]); zeros when absent. */
  visual?: { embeds: Float32Array; deepstack: Float32Array };
  /** Rows of scores, from the last; `returnedLogits` of them with every logit (0: best only). */
  numLogits: number;
  returnedLogits: number;
}

/**
 * One run of the prompt form over the shared bindings (its scores come back to the host): the
 * last numLogits rows' logits, and each row's best logits on demand.
 */
export async function runPromptForm(
  session: Ort.InferenceSession,
  bindings: InPlaceBindings,
  config: Qwen3VLConfig,
  run: PromptFormRun,
): Promise<{ logits: Float32Array; top(count: number): TopLogits[] }> {
  const ort = loadOrtWeb();
  const t = config.text;
  const taps = Math.max(1, config.vision.deepstackVisualIndexes.length);
  const s = run.ids.length;
  const end = run.past + s;
  const visual = run.visual ?? {
    embeds: new Float32Array(s * t.hiddenSize),
    deepstack: new Float32Array(taps * s * t.hiddenSize),
  };
  const int64 = (value: number) => new ort.Tensor('int64', BigInt64Array.of(BigInt(value)), [1]);
  const { feeds, fetches } = bindings.bindingsOf(session);
  const result = await session.run(
    {
      ...feeds,
      [DECODER_INPUTS.ids]: new ort.Tensor('int64', BigInt64Array.from(run.ids, BigInt), [1, s]),
      [DECODER_INPUTS.visual]: new ort.Tensor('float32', visual.embeds, [1, s, t.hiddenSize]),
      [DECODER_INPUTS.deepstack]: new ort.Tensor('float32', visual.deepstack, [
        taps,
        1,
        s,
        t.hiddenSize,
      ]),
      [DECODER_INPUTS.seqlens]: new ort.Tensor('int32', Int32Array.of(end - 1), [1]),
      [DECODER_INPUTS.total]: new ort.Tensor('int32', Int32Array.of(end), []),
      [DECODER_INPUTS.numLogits]: int64(run.numLogits),
      [DECODER_INPUTS.returnedLogits]: int64(run.returnedLogits),
    },
    {
      ...fetches,
      [DECODER_OUTPUTS.logits]: null,
      [DECODER_OUTPUTS.bestBlocks]: null,
      [DECODER_OUTPUTS.bestBlockLogits]: null,
    },
  );
  const blocks = result[DECODER_OUTPUTS.bestBlocks];
  return {
    logits: result[DECODER_OUTPUTS.logits].data as Float32Array,
    top: (count) =>
      topLogitsFromBlocks(
        blocks.data as BigInt64Array,
        result[DECODER_OUTPUTS.bestBlockLogits].data as Float32Array,
        blocks.dims[1],
        count,
        t.vocabSize,
      ),
  };
}
