/**
 * The seams inside the engine. The ONNX side (graph building, sessions, KV cache) implements
 * `LoadedModel`; the host side (tokenizer, chat template, image preprocessing, positions,
 * sampling) drives it through `Engine`. The HTTP server and the CLI only see `Engine`.
 */

export type Precision = 'fp32' | 'fp16' | 'int4';
export type DeviceRequest = 'auto' | 'cpu' | 'webgpu' | 'cuda' | 'dml' | 'coreml';
export type Device = Exclude<DeviceRequest, 'auto'>;

/**
 * What a build is for. 'cpu': the decoder reads its KV cache as read-only inputs and returns
 * only the new rows (the host appends them; no cache copy per step), int4 with fp32
 * activations (MLAS has no fast x86 fp16 path). 'gpu': GroupQueryAttention with past/present
 * buffers that stay on the device, int4 with fp16 activations and KV cache.
 */
export type GraphTarget = 'cpu' | 'gpu';

/**
 * A row's best logits only, highest first and equal values lower id first (the decoder's
 * extendTop): enough for greedy decoding and top-k sampling (see fitsTopLogits).
 */
export interface TopLogits {
  ids: number[];
  logits: Float32Array;
}

/** Progress while preparing a model (building ONNX, loading sessions). */
export interface BuildProgress {
  stage: 'build' | 'load';
  /** What is being worked on, e.g. "vision", "decoder". */
  item: string;
  done: number;
  total: number;
}

/** Output of the vision tower for one image, rows in `<|image_pad|>` order. */
export interface VisionOutput {
  /** Number of merged visual tokens (= grid_t*grid_h*grid_w/4). */
  tokens: number;
  /** [tokens, textHidden] row-major. */
  imageEmbeds: Float32Array;
  /** One [tokens, textHidden] array per DeepStack tap, in tap order. */
  deepstack: Float32Array[];
}

export interface PrefillInput {
  /** Prompt token ids (image pads already expanded). */
  inputIds: number[];
  /** MRoPE positions: three streams (t, h, w), each of length inputIds.length. */
  positionIds: [number[], number[], number[]];
  /**
   * Visual rows for every `<|image_pad|>` token in sequence order (all images concatenated).
   * Omitted for text-only prompts.
   */
  visual?: VisionOutput;
  /**
   * Keep this many leading tokens of the sequence already in the cache (they must equal the
   * first `reuse` input ids, with the same images) and run only the rest. The rest must hold
   * no `<|image_pad|>` token: DeepStack features are only injected by a full prefill.
   */
  reuse?: number;
  /**
   * Checked before each chunk of the prompt: once aborted, prefill stops after the chunk running
   * and rejects with EngineError 'cancelled'; the cache keeps the chunks already run (a prefix
   * of the prompt, which a later prompt may reuse like any cached sequence).
   */
  signal?: AbortSignal;
  /** After each chunk: the prompt tokens run so far, of those this prefill runs. */
  onChunk?: (done: number, total: number) => void;
}

/**
 * A text decoder that owns its KV cache. The cache may live on the device (WebGPU GPU buffers):
 * callers never see it, only logits for the last position.
 */
export interface TextDecoder {
  /** Starts a new sequence: drops any cache, runs the prompt, returns last-position logits [vocab]. */
  prefill(input: PrefillInput): Promise<Float32Array>;
  /** Appends one token at MRoPE position `position` (same in all 3 streams); returns logits [vocab]. */
  step(tokenId: number, position: number): Promise<Float32Array>;
  /**
   * Appends several tokens in one run at positions position, position+1, ... (text tokens) and
   * returns the logits after each of them: row i predicts the token after tokenIds[i]. Used to
   * verify speculative drafts; truncate() then drops the rejected ones.
   */
  extend(tokenIds: number[], position: number): Promise<Float32Array[]>;
  /**
   * extend() that returns only each row's `topLogitsPerRow` best logits, highest first (equal
   * values: lower id first). Greedy decoding and top-k sampling need no more, and the host
   * then neither reads nor scans the vocabulary.
   */
  extendTop(tokenIds: number[], position: number): Promise<TopLogits[]>;
  /**
   * Greedy decoding's next step: extendTop([tokenId], position)[0], where the decoder can also
   * queue the step after it on the device, fed this step's argmax (ties to the lower id), before
   * the host has read this one: a following stepGreedy with that token at the next position
   * then takes the queued step's result, and the host's reading and bookkeeping overlap the
   * device's work (the graph-capture decoder). Any other call drops the queued step. Only for
   * choices that are the argmax: greedy, no repetition penalty.
   */
  stepGreedy?(tokenId: number, position: number): Promise<TopLogits>;
  /** How many best logits extendTop returns per row; 0 when it cannot. */
  readonly topLogitsPerRow: number;
  /** Drops cached positions from `length` on (the next run writes there). */
  truncate(length: number): void;
  /** Tokens currently held in the cache. */
  readonly pastLength: number;
  /** The ids held in the cache, in order (what a later prefill may reuse). */
  readonly cachedIds: readonly number[];
  reset(): void;
  /**
   * The cached sequence with its KV rows, for a later request or process to go on from; the
   * decoder is reset. Host rows are handed over without a copy (the cache's own buffers); rows
   * on a GPU arrive once downloaded, so the decoder is free at once. Undefined when the cache is
   * empty or its form cannot hand its rows over.
   */
  detachSequence?(): DetachedSequence | undefined;
  /**
   * Takes a saved sequence as the cache's, as if this decoder had run it: a later prefill may
   * reuse it. Throws EngineError 'bad_request' when the rows do not fit this decoder's cache.
   */
  restoreSequence?(saved: SavedSequence): void;
}

/**
 * A KV cache's rows, in the layout of the cache form that wrote them (`form` names it): two
 * arrays a layer (keys, values), fp16 as raw Uint16 bits.
 */
export interface KvRows {
  form: string;
  type: 'float32' | 'float16';
  arrays: (Float32Array | Uint16Array)[];
}

/** A decoder's cached sequence: its token ids and their KV rows. */
export interface SavedSequence {
  ids: number[];
  rows: KvRows;
}

/** A sequence as a decoder hands it over: its rows maybe still on their way from a GPU. */
export interface DetachedSequence {
  ids: number[];
  rows: KvRows | Promise<KvRows>;
}

export interface EncodeOptions {
  /**
   * Checked between the tower's stages (where it has several): once aborted, encode rejects with
   * EngineError 'cancelled' after the stage running.
   */
  signal?: AbortSignal;
  /**
   * The image's identity (its hash): a stopped encode keeps its progress under it, and the next
   * encode with the same key goes on from there.
   */
  key?: string;
  /** After each run: the tower's stages done so far (a resumed encode starts past 0). */
  onStage?: (done: number, total: number) => void;
}

export interface VisionEncoder {
  /**
   * pixelValues: [grid_t*grid_h*grid_w, 3*patch*patch] in merge-block order, one frame per patch
   * (patchify.ts; the reference's pixel_values repeat it temporal_patch_size times).
   */
  encode(
    pixelValues: Float32Array,
    gridThw: [number, number, number],
    options?: EncodeOptions,
  ): Promise<VisionOutput>;
}

export interface LoadedModel {
  readonly device: Device;
  readonly precision: Precision;
  readonly vision: VisionEncoder;
  readonly decoder: TextDecoder;
  /** Most positions (prompt and answer) the decoder holds, where its cache is fixed. */
  readonly contextLimit?: number;
  /** The folder of the ONNX build it runs, where the engine keeps its vision outputs on disk. */
  readonly buildDir?: string;
  dispose(): Promise<void>;
}

export interface LoadModelOptions {
  /** Default cpu. auto: the first of cuda, dml, webgpu, coreml whose provider loads, else cpu. */
  device?: DeviceRequest;
  /**
   * The graphs to build and load; default those of the device that loads. 'gpu' on the CPU
   * runs the GPU build there (slower than the CPU build): for tests and comparisons.
   */
  target?: GraphTarget;
  /**
   * Told about choices that cost speed: why `auto` found no GPU provider that loads, when it
   * settles on the CPU; why the prefill decoder was left out.
   */
  onWarning?: (message: string) => void;
  /**
   * CPU int4 builds: load the 8-bit prefill decoder, which runs prompts several times faster
   * and holds the decoder's layer weights a second time (in 8 bits). Default: when the free
   * memory after the other graphs holds twice its weights; true: always; false: never.
   */
  prefillDecoder?: boolean;
  /**
   * The longest run of a prompt, and so the longest a Stop waits during one; default 128 on the
   * CPU, 1,024 elsewhere (token-decoder.ts says why).
   */
  prefillChunk?: number;
  /** Default int4 (MatMulNBits weights); fp16 and fp32 (the reference) are options. */
  precision?: Precision;
  /** Where built ONNX models are cached; default ~/.cache/design-to-code/onnx. */
  cacheDir?: string;
  onProgress?: (progress: BuildProgress) => void;
  /**
   * Diagnostics: onnxruntime profiles the decoder session into PREFIX_<date>.json (on WebGPU
   * with each kernel's GPU time) when the model is disposed.
   */
  profileDecoderTo?: string;
  /**
   * WebGPU provider options onnxruntime-node passes on (validationMode, storageBufferCacheMode,
   * ...), for measuring them; the first session in a process fixes the device-wide ones.
   */
  webgpuOptions?: Record<string, string>;
  /**
   * WebGPU: the text decoder on onnxruntime-web with graph capture (captured-decoder.ts), each
   * decode step replayed from one recording; its KV cache fixed at `capacity` positions, prompt
   * and answer together (longer conversations are refused). `verifyRows`: speculative
   * verification runs of up to that many tokens go through a captured static run of as many
   * rows (padded), instead of the uncaptured prompt form. Needs the optional packages
   * onnxruntime-web and webgpu.
   */
  graphCapture?: { capacity: number; verifyRows?: number };
}

// ---- What the Engine (host side) exposes to the CLI and the HTTP server ----

export type ChatPart =
  | { type: 'text'; text: string }
  /** An image as encoded bytes (PNG, JPEG, WebP, GIF, ...). */
  | { type: 'image'; image: Uint8Array };

export interface ChatMessage {
  role: 'system' | 'user' | 'assistant';
  content: string | ChatPart[];
}

export interface SamplingOptions {
  /** true: argmax; otherwise sample with the settings below (defaults from generation_config.json). */
  greedy?: boolean;
  temperature?: number;
  topP?: number;
  topK?: number;
  repetitionPenalty?: number;
  seed?: number;
}

export interface GenerateRequest {
  messages: ChatMessage[];
  /** 0: read the prompt into the KV cache only (a request that extends it follows). */
  maxNewTokens?: number;
  sampling?: SamplingOptions;
  /** Extra stop strings; the text before the stop string is returned. */
  stop?: string[];
  /**
   * Prompt-lookup speculative decoding (default on): drafts copied from the prompt and the
   * output so far, verified in one decoder run. It never changes what is generated (greedy is
   * token-for-token the same; sampling keeps its distribution), only how fast.
   */
  speculation?: boolean;
}

export interface GenerateCallbacks {
  signal?: AbortSignal;
  /** Text deltas as they become complete UTF-8. */
  onText?: (delta: string) => void;
  /** Fired once after the prompt is prepared (before the vision tower), with its size. */
  onPromptReady?: (info: { promptTokens: number; images: number }) => void;
  /**
   * How far the prompt has been read before the first token: each image's vision tower, stage
   * by stage (several on the CPU), then the prompt's tokens, chunk by chunk.
   */
  onPromptProgress?: (progress: PromptProgress) => void;
}

export interface PromptProgress {
  stage: 'image' | 'prompt';
  done: number;
  total: number;
}

export interface GenerationTimings {
  preprocessMs: number;
  visionMs: number;
  prefillMs: number;
  firstTokenMs: number;
  decodeMs: number;
  perTokenMs: number;
  totalMs: number;
}

/** What a generation did, beyond timings: prefix reuse and speculation counters. */
export interface GenerationStats {
  /** Prompt tokens run through the decoder (the prompt minus any reused prefix). */
  prefilledTokens: number;
  /** Prompt tokens whose KV cache was kept from the previous generation. */
  reusedTokens: number;
  /** Images whose embeddings came from the image cache. */
  cachedImages: number;
  /** Decoder runs after prefill (plain steps and verification runs). */
  decoderRuns: number;
  /** Draft tokens proposed by prompt lookup and verified. */
  draftTokens: number;
  /** Drafts accepted (kept as output). */
  acceptedDrafts: number;
}

export interface GenerationResult {
  promptTokenIds: number[];
  tokenIds: number[];
  text: string;
  imageGridThw: [number, number, number][];
  finishReason: 'stop' | 'length' | 'cancelled';
  timingsMs: GenerationTimings;
  stats?: GenerationStats;
}

export interface EngineInfo {
  /** Model id or directory name. */
  model: string;
  device: Device;
  precision: Precision;
  /** Maximum prompt + completion tokens. */
  contextLength: number;
}

/** A loaded model behind the chat API: implemented in ./engine.ts, used by the CLI and server. */
export interface Engine {
  readonly info: EngineInfo;
  /**
   * Runs one chat to completion. Throws EngineError: 'bad_image', 'image_too_large',
   * 'context_overflow' (message carries the numbers), 'bad_request', 'cancelled' is NOT thrown:
   * a cancelled generation resolves with finishReason 'cancelled' and the text so far.
   */
  generate(request: GenerateRequest, callbacks?: GenerateCallbacks): Promise<GenerationResult>;
  dispose(): Promise<void>;
}

export interface EngineLoadOptions extends LoadModelOptions {
  /** A local Hugging Face checkpoint directory. */
  modelDir: string;
  /** Name reported in EngineInfo.model (default: the directory's base name). */
  modelName?: string;
  /**
   * Most pixels an image keeps after Qwen's smart_resize (default 1600 * 32 * 32 = 1.6 MP, 1600
   * visual tokens; the checkpoint's own bound when lower). Infinity: the checkpoint's bound only.
   */
  maxImagePixels?: number;
  /**
   * Keep the conversations the decoder's cache held on disk in the build folder,
   * shelved when a request drops one and when the engine is disposed, for a later request or
   * the next engine to go on from (conversation-shelf.ts). The server does; one-off runs (the
   * CLI's generate, tests, benchmarks) need not.
   */
  keepConversations?: boolean;
}
