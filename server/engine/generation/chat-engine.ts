/**
 * The Engine (contracts.ts) over a loaded ONNX model and the checkpoint's host side: prepares
 * the chat, checks it fits the context, runs the vision tower per image, then the decode loop.
 * One generation runs at a time (the decoder owns a single KV cache); later calls wait.
 * Between generations the KV cache is kept: a prompt that extends the cached sequence (a
 * refinement) prefills only its new tokens, vision outputs are cached by image hash (in memory,
 * and on disk beside the build for the next engine: vision-disk-cache.ts), and prompt lookup may
 * draft from the latest answers where the sequence itself offers nothing. Where asked, the
 * conversations the cache held are kept on disk, across requests and restarts
 * (conversation-shelf.ts).
 */
import { join } from 'node:path';
import type { ChatCheckpoint } from '../chat/chat-checkpoint';
import { ImageLayouts } from '../chat/image-layouts';
import { imagePixels, prepareChat, warmNextTurn } from '../chat/prepare-chat';
import type {
  Engine,
  EngineInfo,
  GenerateCallbacks,
  GenerateRequest,
  GenerationResult,
  LoadedModel,
  TextDecoder,
  VisionOutput,
} from '../contracts';
import { EngineError, isEngineError } from '../errors';
import type { ImageLimits } from '../preprocess/decode-image';
import { runDecodeLoop } from './decode-loop';
import { ImageEmbeddingCache } from './image-cache';
import { reusablePrefix } from './prefix-reuse';
import { DEFAULT_PROMPT_LOOKUP, type PromptLookupSettings } from './prompt-lookup';
import { randomSeed, seededRandom } from './prng';
import { RecentAnswers } from './recent-answers';
import { type RunCost, runCostFor } from './run-cost';
import { resolveSampler } from './sampler-settings';
import { ConversationShelf } from './conversation-shelf';
import { VisionDiskCache } from './vision-disk-cache';

export interface ChatEngineOptions {
  modelName: string;
  /** Prompt-lookup settings, or false to never speculate. */
  speculation?: PromptLookupSettings | false;
  /** What decoder runs cost, for the draft planner; default the device's measured curve. */
  runCost?: RunCost;
  /** Bytes of vision outputs kept by image hash (default 512 MiB). */
  imageCacheBytes?: number;
  /**
   * Bytes of vision outputs kept on disk in the model's build folder, across restarts (default
   * 1 GiB; 0: none).
   */
  imageDiskCacheBytes?: number;
  /**
   * Most bytes of conversations (KV rows) kept on disk in the build folder, shelved when a
   * request drops them from the cache and when the engine is disposed (default 0: none; the
   * server's is DEFAULT_SHELF_BYTES).
   */
  conversationShelfBytes?: number;
  /** Shorter conversations are read again rather than shelved (default MIN_SHELVED_TOKENS). */
  minShelvedTokens?: number;
  /** Prompt + completion limit; default: the model's max_position_embeddings. */
  contextLength?: number;
  imageLimits?: ImageLimits;
}

export function createChatEngine(
  model: LoadedModel,
  checkpoint: ChatCheckpoint,
  options: ChatEngineOptions,
): Engine {
  const info: EngineInfo = {
    model: options.modelName,
    device: model.device,
    precision: model.precision,
    // The decoder's own limit (a fixed cache) bounds any other.
    contextLength: Math.min(
      options.contextLength ?? checkpoint.model.text.maxPositionEmbeddings,
      model.contextLimit ?? Infinity,
    ),
  };
  let queue: Promise<unknown> = Promise.resolve();
  const diskBytes = options.imageDiskCacheBytes ?? 1024 ** 3;
  const state: ReuseState = {
    images: new ImageEmbeddingCache(options.imageCacheBytes),
    disk:
      model.buildDir && diskBytes > 0
        ? new VisionDiskCache(join(model.buildDir, 'images'), diskBytes)
        : undefined,
    layouts: new ImageLayouts(),
    answers: new RecentAnswers(),
    minShelvedTokens: options.minShelvedTokens ?? MIN_SHELVED_TOKENS,
    shelf:
      model.buildDir && options.conversationShelfBytes
        ? new ConversationShelf(
            join(model.buildDir, `conversations-${model.device}`),
            options.conversationShelfBytes,
          )
        : undefined,
  };
  return {
    info,
    generate(request, callbacks = {}) {
      const run = queue.then(() =>
        generateOnce(model, checkpoint, info, options, state, request, callbacks),
      );
      queue = run.catch(() => undefined);
      return run;
    },
    async dispose() {
      await queue;
      await state.disk?.flushed();
      shelveCached(model.decoder, state);
      await state.shelf?.flushed();
      await model.dispose();
    },
  };
}

/** What outlives one generation in this engine: its image caches and latest answers. */
interface ReuseState {
  images: ImageEmbeddingCache;
  /** The same on disk, for images seen before the server (re)started. */
  disk?: VisionDiskCache;
  layouts: ImageLayouts;
  answers: RecentAnswers;
  /** Conversations the decoder held, on disk (where asked). */
  shelf?: ConversationShelf;
  minShelvedTokens: number;
}

/**
 * A conversation shorter than this is read again rather than shelved: on two CPU cores 64 tokens
 * read in about half a second (a 2B model's file for them: 15 MB). Every screenshot's is longer.
 */
const MIN_SHELVED_TOKENS = 64;

/**
 * Which images (content hashes with their grids, in order) each decoder's cached sequence
 * holds. Kept per decoder, not per engine, so engines sharing a model never trust each other's
 * stale record.
 */
const cachedImageKeys = new WeakMap<TextDecoder, string[]>();

async function generateOnce(
  model: LoadedModel,
  checkpoint: ChatCheckpoint,
  info: EngineInfo,
  options: ChatEngineOptions,
  state: ReuseState,
  request: GenerateRequest,
  callbacks: GenerateCallbacks,
): Promise<GenerationResult> {
  try {
    return await generateWith(model, checkpoint, info, options, state, request, callbacks);
  } catch (error) {
    // A failed run may leave the cache half-written: the next request starts from scratch.
    model.decoder.reset();
    cachedImageKeys.delete(model.decoder);
    throw error;
  }
}

async function generateWith(
  model: LoadedModel,
  checkpoint: ChatCheckpoint,
  info: EngineInfo,
  options: ChatEngineOptions,
  state: ReuseState,
  request: GenerateRequest,
  callbacks: GenerateCallbacks,
): Promise<GenerationResult> {
  const started = performance.now();
  const sampler = resolveSampler(request.sampling, checkpoint.generation);
  const stop = checkStop(request.stop);
  const prepared = await prepareChat(
    request.messages,
    checkpoint,
    options.imageLimits,
    state.layouts,
  );
  const promptTokens = prepared.inputIds.length;
  const maxNewTokens = budget(request.maxNewTokens, promptTokens, info.contextLength, checkpoint);
  const preprocessMs = performance.now() - started;
  callbacks.onPromptReady?.({ promptTokens, images: prepared.images.length });

  const imageKeys = prepared.images.map((image) => image.key);
  // The same image at another grid (another pixel cap) makes other visual rows and positions.
  const sequenceKeys = prepared.images.map((image) => `${image.key}@${image.gridThw.join('x')}`);
  const imageTokenId = checkpoint.model.imageTokenId;
  await switchConversation(model.decoder, state, prepared.inputIds, sequenceKeys, imageTokenId);
  const reuse = reusablePrefix(
    { ids: model.decoder.cachedIds, imageKeys: cachedImageKeys.get(model.decoder) ?? [] },
    prepared.inputIds,
    sequenceKeys,
    imageTokenId,
  );

  // A reused prefix holds every image already: the vision tower is not needed at all.
  const visionStarted = performance.now();
  const outputs: VisionOutput[] = [];
  let cachedImages = 0;
  if (reuse === 0) {
    for (const [i, image] of prepared.images.entries()) {
      if (callbacks.signal?.aborted) break;
      const onDisk = VisionDiskCache.entryName(model.device, imageKeys[i], image.gridThw);
      let output =
        state.images.get(imageKeys[i]) ?? (await readFromDisk(state, imageKeys[i], onDisk));
      if (output) cachedImages++;
      else {
        // A known layout skipped the pixels; the vision tower needs them after all.
        const pixels = await imagePixels(image, checkpoint, options.imageLimits);
        try {
          output = await model.vision.encode(pixels, image.gridThw, {
            signal: callbacks.signal,
            key: imageKeys[i],
            onStage: (done, total) => callbacks.onPromptProgress?.({ stage: 'image', done, total }),
          });
        } catch (error) {
          // Stopped between two stages of the tower: the decode loop reports the stop.
          if (isEngineError(error, 'cancelled')) break;
          throw error;
        }
        state.images.set(imageKeys[i], output);
        state.disk?.write(onDisk, output);
      }
      outputs.push(output);
    }
  }
  const visionMs = performance.now() - visionStarted;
  // Stopped before the prefill (which the decode loop then skips): the decoder still holds its
  // earlier sequence, and so its images. No await lies between this check and the prefill.
  if (!callbacks.signal?.aborted) cachedImageKeys.set(model.decoder, sequenceKeys);
  const speculation =
    request.speculation === false || options.speculation === false
      ? undefined
      : (options.speculation ?? DEFAULT_PROMPT_LOOKUP);
  const imageGridThw = prepared.images.map((image) => image.gridThw);

  const loop = await runDecodeLoop({
    decoder: model.decoder,
    prefill: {
      inputIds: prepared.inputIds,
      positionIds: prepared.positionIds,
      visual: reuse === 0 && outputs.length > 0 ? concatVision(outputs) : undefined,
      reuse,
      onChunk: (done, total) => callbacks.onPromptProgress?.({ stage: 'prompt', done, total }),
    },
    speculation,
    // Drafts change which random draws a sampled token takes, so a seeded sampled request,
    // which must give the same tokens every time, drafts from its own sequence only.
    lookupReferences:
      sampler.greedy || request.sampling?.seed === undefined ? state.answers.list : undefined,
    runCost: options.runCost ?? runCostFor(model.device),
    ropeDelta: prepared.ropeDelta,
    maxNewTokens,
    eosTokenIds: checkpoint.generation.eosTokenIds,
    sampler,
    random: seededRandom(request.sampling?.seed ?? randomSeed()),
    tokenizer: checkpoint.tokenizer,
    stop,
    signal: callbacks.signal,
    onText: callbacks.onText,
  });
  state.answers.add(loop.tokenIds);
  // While the user reads the answer, its tokens for a follow-up turn (after this one returns).
  setImmediate(() => warmNextTurn(request.messages, loop.text, checkpoint));
  const totalMs = performance.now() - started;
  return {
    promptTokenIds: prepared.inputIds,
    tokenIds: loop.tokenIds,
    text: loop.text,
    imageGridThw,
    finishReason: loop.finishReason,
    timingsMs: {
      preprocessMs,
      visionMs,
      prefillMs: loop.prefillMs,
      firstTokenMs: preprocessMs + visionMs + loop.firstTokenMs,
      decodeMs: loop.decodeMs,
      // Per generated token after the first (a verification run may yield several).
      perTokenMs: loop.tokenIds.length > 1 ? loop.decodeMs / (loop.tokenIds.length - 1) : 0,
      totalMs,
    },
    stats: {
      prefilledTokens: prepared.inputIds.length - reuse,
      reusedTokens: reuse,
      cachedImages,
      decoderRuns: loop.decodeSteps,
      draftTokens: loop.draftTokens,
      acceptedDrafts: loop.acceptedDrafts,
    },
  };
}

/** The number of new tokens to allow, or a context_overflow error carrying the numbers. */
function budget(
  requested: number | undefined,
  promptTokens: number,
  contextLength: number,
  checkpoint: ChatCheckpoint,
): number {
  // 0: read the prompt into the KV cache only, for a request that will extend it (a
  // refinement read while the user types it).
  if (requested !== undefined && (!Number.isInteger(requested) || requested < 0)) {
    throw new EngineError(
      'bad_request',
      `maxNewTokens must be a whole number, 0 or more, got ${requested}`,
    );
  }
  const room = contextLength - promptTokens;
  if (requested !== undefined && requested > room) {
    throw new EngineError(
      'context_overflow',
      `The prompt has ${promptTokens} tokens and ${requested} new tokens were requested: ${promptTokens + requested} exceeds the context length of ${contextLength}`,
    );
  }
  if (room < 1) {
    throw new EngineError(
      'context_overflow',
      `The prompt has ${promptTokens} tokens, which leaves no room in the context length of ${contextLength}`,
    );
  }
  return requested ?? Math.min(room, checkpoint.generation.maxNewTokens ?? room);
}

function checkStop(stop: unknown): string[] {
  if (stop === undefined) return [];
  if (!Array.isArray(stop) || !stop.every((s) => typeof s === 'string')) {
    throw new EngineError('bad_request', 'stop must be a list of strings');
  }
  return stop;
}

/**
 * Before a request: when it would drop the cached conversation (it keeps none of it), that
 * conversation goes onto the shelf; when a shelved conversation gives it more to keep than the
 * cache, that one comes back into the cache. A shelved conversation may come from another
 * process: only its ids and image keys vouch for it.
 */
async function switchConversation(
  decoder: TextDecoder,
  state: ReuseState,
  inputIds: readonly number[],
  sequenceKeys: readonly string[],
  imageTokenId: number,
): Promise<void> {
  const shelf = state.shelf;
  if (!shelf || !decoder.restoreSequence) return;
  const keeps = (held: { ids: readonly number[]; imageKeys: readonly string[] }) =>
    reusablePrefix(held, inputIds, sequenceKeys, imageTokenId);
  const kept =
    decoder.pastLength > 0
      ? keeps({ ids: decoder.cachedIds, imageKeys: cachedImageKeys.get(decoder) ?? [] })
      : 0;
  const best = await shelf.best(keeps);
  const switching = best.score > kept;
  if (kept === 0 || switching) shelveCached(decoder, state);
  if (!switching) return;
  const saved = await shelf.take(best.name).catch(() => undefined);
  if (!saved) return;
  try {
    decoder.restoreSequence(saved);
    cachedImageKeys.set(decoder, saved.imageKeys);
  } catch {
    // Rows that do not fit this decoder (another build's file): prefill as without them.
    decoder.reset();
  }
}

/**
 * The cached conversation onto the shelf (written in the background), where it is long enough
 * to be worth a file; the decoder is left empty either way.
 */
function shelveCached(decoder: TextDecoder, state: ReuseState): void {
  const imageKeys = cachedImageKeys.get(decoder) ?? [];
  cachedImageKeys.delete(decoder);
  const { shelf } = state;
  const sequence =
    shelf && decoder.pastLength >= state.minShelvedTokens ? decoder.detachSequence?.() : undefined;
  decoder.reset();
  if (shelf && sequence) shelf.put({ ...sequence, imageKeys });
}

/** An image's vision outputs from the disk cache, kept in memory too once found. */
async function readFromDisk(
  state: ReuseState,
  key: string,
  entry: string,
): Promise<VisionOutput | undefined> {
  const output = await state.disk?.read(entry);
  if (output) state.images.set(key, output);
  return output;
}

/** All images' visual rows in prompt order, as one VisionOutput. */
function concatVision(outputs: VisionOutput[]): VisionOutput {
  if (outputs.length === 1) return outputs[0];
  const concat = (parts: Float32Array[]): Float32Array => {
    const out = new Float32Array(parts.reduce((n, p) => n + p.length, 0));
    let offset = 0;
    for (const part of parts) {
      out.set(part, offset);
      offset += part.length;
    }
    return out;
  };
  return {
    tokens: outputs.reduce((n, o) => n + o.tokens, 0),
    imageEmbeds: concat(outputs.map((o) => o.imageEmbeds)),
    deepstack: outputs[0].deepstack.map((_, tap) => concat(outputs.map((o) => o.deepstack[tap]))),
  };
}
