/**
 * The decoder's KV cache, in one of three forms:
 *
 * - InPlaceKvCache (CPU): one host buffer per layer and K/V with room for `capacity` positions,
 *   bound both as past_* input and as the preallocated present_* output. Measured on
 *   onnxruntime-node 1.30: the binding does not hand a preallocated CPU fetch to the run; it
 *   copies the run's own present into it afterwards (the returned tensor is a different
 *   object), so a step costs copies proportional to the capacity. The buffers therefore grow
 *   in fixed steps. (A copy-free CPU cache needs attention over read-only cache inputs with the
 *   host appending the new rows, or IO binding, which the Node binding has for WebGPU only.)
 * - HandoverKvCache (GPUs): each run's present_* outputs become the next run's past_* inputs
 *   untouched; with preferredOutputLocation 'gpu-buffer' (WebGPU) they never leave the device.
 *   GroupQueryAttention copies the past rows into a new present each run, on the device. A
 *   max-length buffer shared by past and present (appended in place) is what GroupQueryAttention
 *   is built for, but onnxruntime-node 1.30 cannot express it: a gpu-buffer tensor passed as a
 *   run's fetch is not written in place (measured over Vulkan: the rows a step appended were gone
 *   at the next step, so every later token attended to a cache missing the tokens generated so
 *   far). On WebGPU the tensors carry spare rows (a present is as long as its past), padded
 *   on the device by a KvPadder, so that each step's presents reuse pooled GPU buffers instead
 *   of allocating (kv-capacity.ts).
 * - HostKvCache (the CPU build): host buffers the graph only reads (keys transposed), plus a
 *   bias input that masks rows beyond the valid length; each run returns just its new rows and
 *   the host appends them. No cache copy per step (see decoder-graph.ts hostCacheAttention).
 *
 * Truncation (dropping rejected speculative drafts) needs no work in any form: the next run's
 * seqlens_k tells GroupQueryAttention where the valid rows end and where to write.
 */
import * as ort from 'onnxruntime-node';
import type { TextConfig } from '../checkpoint/config';
import type { KvRows } from '../contracts';
import { EngineError } from '../errors';
import { DECODER_INPUTS, DECODER_OUTPUTS, HOST_CACHE_INPUTS } from '../onnx/decoder-graph';
import { KV_HEADROOM_ROWS, KV_PAD_FROM_BYTES, planKvCapacities } from './kv-capacity';
import type { KvPadder } from './kv-padder';

export type CacheType = 'float32' | 'float16';

export interface KvCache {
  /** Makes room for `rows` rows before a run, where that takes a run of its own. */
  makeRoom?(rows: number): Promise<void>;
  /**
   * Sets the past_* feeds for a run appending `tokens` after `past`; returns the cache outputs
   * to write in place, or undefined when onnxruntime allocates every output.
   */
  bind(
    feeds: Record<string, ort.Tensor>,
    past: number,
    tokens: number,
  ): Record<string, ort.Tensor> | undefined;
  /** Takes over the run's present_* outputs. */
  commit(result: ort.InferenceSession.OnnxValueMapType): void;
  reset(): void;
  /**
   * The first `length` rows: on the host the cache's own buffers, handed over without a copy;
   * on a GPU a download, which the cache no longer waits for. The cache is reset.
   */
  detachRows?(length: number): KvRows | Promise<KvRows>;
  /** Takes rows detachRows gave (maybe in another process) as the cache's first rows. */
  loadRows?(rows: KvRows, length: number): void;
}

type Buffer = Float32Array | Uint16Array;

/** Bytes of one position of one layer's keys (or values): every kv head's vector. */
export function kvRowBytes(text: TextConfig, type: CacheType): number {
  return text.numKvHeads * text.headDim * (type === 'float16' ? 2 : 4);
}

/** Zeroed cache rows in the cache's element type (fp16 travels as raw Uint16 bits). */
function allocateRows(type: CacheType, length: number): Buffer {
  return type === 'float16' ? new Uint16Array(length) : new Float32Array(length);
}

function cacheTensor(type: CacheType, data: Buffer, dims: number[]): ort.Tensor {
  return type === 'float16'
    ? new ort.Tensor('float16', data as Uint16Array, dims)
    : new ort.Tensor('float32', data as Float32Array, dims);
}

/**
 * A larger cache buffer: `blocks` blocks of `capacity` rows of `rowLength` values, each block
 * starting with the first `keep` rows of the same block of `from` (blocks of `oldCapacity`
 * rows), zeros elsewhere; all zeros without `from`. Values [KV, C, hd] are KV blocks of hd-long
 * rows; transposed keys [KV, hd, C] are KV*hd blocks of single values.
 */
function regrow(
  type: CacheType,
  from: Buffer | undefined,
  shape: { blocks: number; rowLength: number },
  oldCapacity: number,
  capacity: number,
  keep: number,
): Buffer {
  const { blocks, rowLength } = shape;
  const out = allocateRows(type, blocks * capacity * rowLength);
  if (!from) return out;
  for (let b = 0; b < blocks; b++) {
    const start = b * oldCapacity * rowLength;
    out.set(from.subarray(start, start + keep * rowLength) as never, b * capacity * rowLength);
  }
  return out;
}

/**
 * `buffer`'s blocks of `capacity` rows moved together to blocks of `length` rows, in place (each
 * block moves towards the start, so a copyWithin never overwrites what is still to move); the
 * compacted part, as a view.
 */
function compact(
  buffer: Buffer,
  shape: { blocks: number; rowLength: number },
  capacity: number,
  length: number,
): Buffer {
  const { blocks, rowLength } = shape;
  for (let b = 1; b < blocks; b++) {
    const from = b * capacity * rowLength;
    buffer.copyWithin(b * length * rowLength, from, from + length * rowLength);
  }
  return buffer.subarray(0, blocks * length * rowLength);
}

/**
 * Throws EngineError 'bad_request' unless `rows` are `length` rows of a cache of this form and
 * type: two arrays a layer of heads x headDim x length values each (keys, values).
 */
function checkRowsFit(
  rows: KvRows,
  cache: { form: string; type: CacheType },
  text: TextConfig,
  length: number,
): void {
  const { numLayers, numKvHeads, headDim } = text;
  const perArray = numKvHeads * headDim * length;
  const fits =
    rows.form === cache.form &&
    rows.type === cache.type &&
    rows.arrays.length === 2 * numLayers &&
    rows.arrays.every(
      (array) =>
        array.length === perArray &&
        array instanceof (cache.type === 'float16' ? Uint16Array : Float32Array),
    );
  if (!fits) {
    throw new EngineError(
      'bad_request',
      `saved KV rows (${rows.form}, ${rows.type}, ${rows.arrays.length} arrays) do not fit this ` +
        `cache (${cache.form}, ${cache.type}, ${2 * numLayers} arrays of ${perArray})`,
    );
  }
}

/**
 * The first `length` rows of each [1, heads, rows, headDim] tensor on the host: host tensors
 * compacted in place, GPU tensors read through the padder's device-side slice. Every tensor is
 * disposed once read, or on failure.
 */
async function hostRows(
  tensors: ort.Tensor[],
  length: number,
  padder: KvPadder | undefined,
): Promise<Buffer[]> {
  try {
    if (tensors.some((tensor) => tensor.dims[2] < length)) {
      throw new EngineError('internal', `a KV tensor holds fewer than ${length} rows`);
    }
    if (tensors.every((tensor) => tensor.location === 'cpu')) {
      return tensors.map((tensor) => {
        const [, heads, rows, headDim] = tensor.dims;
        return compact(tensor.data as Buffer, { blocks: heads, rowLength: headDim }, rows, length);
      });
    }
    if (!padder) throw new EngineError('internal', 'KV rows on a device without a reader');
    return await padder.read(tensors, length);
  } finally {
    for (const tensor of tensors) tensor.dispose();
  }
}

export class InPlaceKvCache implements KvCache {
  private tensors: ort.Tensor[] = [];
  private capacity = 0;

  constructor(
    private readonly text: TextConfig,
    private readonly type: CacheType,
    private readonly initialCapacity = 256,
  ) {}

  bind(feeds: Record<string, ort.Tensor>, past: number, tokens: number) {
    this.reserve(past, past + tokens);
    const fetches: Record<string, ort.Tensor> = {};
    for (let l = 0; l < this.text.numLayers; l++) {
      const [k, v] = [this.tensors[2 * l], this.tensors[2 * l + 1]];
      feeds[DECODER_INPUTS.pastKey(l)] = k;
      feeds[DECODER_INPUTS.pastValue(l)] = v;
      fetches[DECODER_OUTPUTS.presentKey(l)] = k;
      fetches[DECODER_OUTPUTS.presentValue(l)] = v;
    }
    return fetches;
  }

  commit(): void {
    // Written in place by the run.
  }

  reset(): void {
    this.tensors = [];
    this.capacity = 0;
  }

  /** Grows the buffers (keeping the first `keep` positions) so `needed` positions fit. */
  private reserve(keep: number, needed: number): void {
    if (needed <= this.capacity) return;
    // onnxruntime-node copies a preallocated CPU output back into the JS buffer after the run
    // (and GroupQueryAttention copies the past into its own present), so every step costs
    // copies of the whole capacity: grow in steps of `initialCapacity`, not by doubling.
    const step = this.initialCapacity;
    const capacity = Math.max(step, Math.ceil(needed / step) * step);
    const { numKvHeads: heads, headDim } = this.text;
    const dims = [1, heads, capacity, headDim];
    const shape = { blocks: heads, rowLength: headDim };
    this.tensors = Array.from({ length: 2 * this.text.numLayers }, (_, i) => {
      const from = this.tensors[i]?.data as Buffer | undefined;
      return cacheTensor(
        this.type,
        regrow(this.type, from, shape, this.capacity, capacity, keep),
        dims,
      );
    });
    this.capacity = capacity;
  }
}

export class HandoverKvCache implements KvCache {
  /** Names this layout in saved rows: per layer keys, then values, [heads, rows, headDim]. */
  static readonly FORM = 'head-major';
  private tensors: ort.Tensor[] = [];
  private padFailed = false;

  constructor(
    private readonly text: TextConfig,
    private readonly type: CacheType,
    private readonly padder?: KvPadder,
    /** Tensors smaller than this stay unpadded (kv-capacity.ts); tests pass 0. */
    private readonly padFromBytes = KV_PAD_FROM_BYTES,
  ) {}

  /** Rows each handed-over tensor holds (valid ones first; the rest spare or stale). */
  get rows(): number[] {
    return this.tensors.map((tensor) => tensor.dims[2]);
  }

  /** Pads every tensor to a planned capacity once the shortest cannot take `rows` rows. */
  async makeRoom(rows: number): Promise<void> {
    if (!this.padder || this.padFailed || this.tensors.length === 0) return;
    const lengths = this.rows;
    if (Math.min(...lengths) >= rows) return;
    const bytesPerRow = kvRowBytes(this.text, this.type);
    if (rows * bytesPerRow < this.padFromBytes) return;
    const plan = planKvCapacities(this.tensors.length, rows + KV_HEADROOM_ROWS, bytesPerRow);
    // Per layer (key and value alike, as GroupQueryAttention requires), the longest layers
    // taking the largest capacities so none has to shrink.
    const order = Array.from({ length: lengths.length / 2 }, (_, l) => l).sort(
      (a, b) => lengths[2 * a] - lengths[2 * b],
    );
    const capacities: number[] = [];
    order.forEach((layer, rank) => {
      capacities[2 * layer] = capacities[2 * layer + 1] = plan[2 * rank];
    });
    let padded: ort.Tensor[];
    try {
      padded = await this.padder.pad(this.tensors, capacities);
    } catch {
      // Out of GPU memory, most likely (spare rows cost up to a few times the cache): the
      // tensors are untouched, so go on unpadded, slower but correct, and stop trying.
      this.padFailed = true;
      return;
    }
    for (const tensor of this.tensors) tensor.dispose();
    this.tensors = padded;
  }

  bind(feeds: Record<string, ort.Tensor>) {
    for (let l = 0; l < this.text.numLayers; l++) {
      feeds[DECODER_INPUTS.pastKey(l)] = this.tensors[2 * l] ?? this.empty();
      feeds[DECODER_INPUTS.pastValue(l)] = this.tensors[2 * l + 1] ?? this.empty();
    }
    return undefined;
  }

  commit(result: ort.InferenceSession.OnnxValueMapType): void {
    const previous = this.tensors;
    this.tensors = [];
    for (let l = 0; l < this.text.numLayers; l++) {
      this.tensors.push(
        result[DECODER_OUTPUTS.presentKey(l)] as ort.Tensor,
        result[DECODER_OUTPUTS.presentValue(l)] as ort.Tensor,
      );
    }
    for (const tensor of previous) tensor.dispose();
  }

  reset(): void {
    for (const tensor of this.tensors) tensor.dispose();
    this.tensors = [];
  }

  /**
   * The first `length` rows, read from the GPU in the background: the cache is empty at once,
   * and its tensors live until their rows are read.
   */
  async detachRows(length: number): Promise<KvRows> {
    const tensors = this.tensors;
    this.tensors = [];
    const arrays = await hostRows(tensors, length, this.padder);
    return { form: HandoverKvCache.FORM, type: this.type, arrays };
  }

  /** Saved rows as the cache's tensors, on the host: the next run takes them to the GPU. */
  loadRows(rows: KvRows, length: number): void {
    checkRowsFit(rows, { form: HandoverKvCache.FORM, type: this.type }, this.text, length);
    this.reset();
    const { numKvHeads: heads, headDim } = this.text;
    this.tensors = rows.arrays.map((array) =>
      cacheTensor(this.type, array, [1, heads, length, headDim]),
    );
  }

  private empty(): ort.Tensor {
    const dims = [1, this.text.numKvHeads, 0, this.text.headDim];
    return cacheTensor(this.type, allocateRows(this.type, 0), dims);
  }
}

export class HostKvCache implements KvCache {
  /** Names this layout in saved rows: another form's rows are refused. */
  static readonly FORM = 'host-transposed-keys';
  /** Per layer: keys transposed [KV, hd, capacity], values [KV, capacity, hd]. */
  private keys: Buffer[] = [];
  private values: Buffer[] = [];
  private capacity = 0;
  private past = 0;
  private tokens = 0;

  /**
   * Attention reads every row up to the capacity (the bias masks the unused ones), so the
   * step is small: 64 rows waste 32 on average, where 256 made a 280-token prompt read 512
   * (measured: the step's attention matmuls 10.2 ms at 512 rows). Growing copies the cache,
   * once per `step` tokens: a few MB per token at 1,000 positions against the ~7 MB a
   * wasted half step costs every token.
   */
  constructor(
    private readonly text: TextConfig,
    private readonly type: CacheType,
    private readonly step = 64,
  ) {}

  bind(feeds: Record<string, ort.Tensor>, past: number, tokens: number) {
    this.reserve(past, past + tokens);
    this.past = past;
    this.tokens = tokens;
    const { numKvHeads: heads, headDim, numLayers } = this.text;
    // A first prefill attends to nothing cached: an empty cache spares it scores against every
    // (masked) row of the capacity, about as many as the prompt's own.
    const c = past === 0 ? 0 : this.capacity;
    const none = allocateRows(this.type, 0);
    for (let l = 0; l < numLayers; l++) {
      feeds[HOST_CACHE_INPUTS.pastKeyT(l)] = cacheTensor(this.type, c ? this.keys[l] : none, [
        1,
        heads,
        headDim,
        c,
      ]);
      feeds[HOST_CACHE_INPUTS.pastValue(l)] = cacheTensor(this.type, c ? this.values[l] : none, [
        1,
        heads,
        c,
        headDim,
      ]);
    }
    // Rows (g, s) for each of the G query heads per kv head; columns: cache, then new tokens.
    const groups = this.text.numHeads / heads;
    const width = c + tokens;
    const bias = new Float32Array(groups * tokens * width).fill(-Infinity);
    for (let g = 0; g < groups; g++) {
      for (let s = 0; s < tokens; s++) {
        const row = (g * tokens + s) * width;
        bias.fill(0, row, row + past);
        bias.fill(0, row + c, row + c + s + 1);
      }
    }
    feeds[HOST_CACHE_INPUTS.bias] = new ort.Tensor('float32', bias, [groups, tokens, width]);
    return undefined;
  }

  /** Appends the run's new rows at [past, past + tokens). */
  commit(result: ort.InferenceSession.OnnxValueMapType): void {
    const { numKvHeads: heads, headDim, numLayers } = this.text;
    const [c, p, n] = [this.capacity, this.past, this.tokens];
    for (let l = 0; l < numLayers; l++) {
      const newK = result[DECODER_OUTPUTS.newKey(l)].data as Buffer; // [KV, hd, n]
      const newV = result[DECODER_OUTPUTS.newValue(l)].data as Buffer; // [KV, n, hd]
      const keys = this.keys[l];
      const values = this.values[l];
      for (let h = 0; h < heads; h++) {
        for (let d = 0; d < headDim; d++) {
          // Keys are stored transposed: each of the KV*hd rows gets n values. A decode step
          // has n = 1, where element copies beat subarray + set (commit 4.5 -> 1.0 ms a step on
          // the 2B model: 28k tiny set() calls cost more than the copying).
          const from = (h * headDim + d) * n;
          const to = (h * headDim + d) * c + p;
          if (n < 16) for (let i = 0; i < n; i++) keys[to + i] = newK[from + i];
          else keys.set(newK.subarray(from, from + n) as never, to);
        }
        values.set(
          newV.subarray(h * n * headDim, (h + 1) * n * headDim) as never,
          (h * c + p) * headDim,
        );
      }
    }
  }

  reset(): void {
    this.keys = [];
    this.values = [];
    this.capacity = 0;
  }

  /** The buffers compacted in place to `length` rows (no copy of hundreds of MB), then reset. */
  detachRows(length: number): KvRows {
    this.checkRows(length);
    const { keyShape, valueShape } = this.shapes();
    const arrays: Buffer[] = [];
    for (let l = 0; l < this.text.numLayers; l++) {
      arrays.push(
        compact(this.keys[l], keyShape, this.capacity, length),
        compact(this.values[l], valueShape, this.capacity, length),
      );
    }
    this.reset();
    return { form: HostKvCache.FORM, type: this.type, arrays };
  }

  loadRows(rows: KvRows, length: number): void {
    checkRowsFit(rows, { form: HostKvCache.FORM, type: this.type }, this.text, length);
    // The saved arrays become the buffers, exactly `length` rows long: the next run grows them.
    this.keys = rows.arrays.filter((_, i) => i % 2 === 0);
    this.values = rows.arrays.filter((_, i) => i % 2 === 1);
    this.capacity = length;
  }

  /** Grows (in steps) so `needed` rows fit, keeping the first `keep`. */
  private reserve(keep: number, needed: number): void {
    if (needed <= this.capacity) return;
    const capacity = Math.ceil(needed / this.step) * this.step;
    const { keyShape, valueShape } = this.shapes();
    const keys: Buffer[] = [];
    const values: Buffer[] = [];
    for (let l = 0; l < this.text.numLayers; l++) {
      keys.push(regrow(this.type, this.keys[l], keyShape, this.capacity, capacity, keep));
      values.push(regrow(this.type, this.values[l], valueShape, this.capacity, capacity, keep));
    }
    this.keys = keys;
    this.values = values;
    this.capacity = capacity;
  }

  private checkRows(length: number): void {
    if (!Number.isInteger(length) || length < 0 || length > this.capacity) {
      throw new EngineError(
        'bad_request',
        `cannot hand over ${length} rows of a cache of ${this.capacity}`,
      );
    }
  }

  /** Keys transposed [KV, hd, C]: KV*hd blocks of single values; values [KV, C, hd]. */
  private shapes() {
    const { numKvHeads: heads, headDim } = this.text;
    return {
      keyShape: { blocks: heads * headDim, rowLength: 1 },
      valueShape: { blocks: heads, rowLength: headDim },
    };
  }
}
