/**
 * `loadEngine`: a checkpoint directory in, a ready Engine out. The host side (config,
 * tokenizer, template, image settings, generation defaults) is read first so that a broken
 * checkpoint fails in milliseconds; then the ONNX model is built or loaded from the cache.
 */
import { basename, resolve } from 'node:path';
import { loadChatCheckpoint } from './chat/chat-checkpoint';
import type { Engine, EngineLoadOptions } from './contracts';
import { createChatEngine } from './generation/chat-engine';
import { DEFAULT_SHELF_BYTES } from './generation/conversation-shelf';
import { capImagePixels } from './preprocess/image-config';
import { sharedResizeWorkers } from './preprocess/parallel-resize';
import { loadModel } from './runtime/load-model';

export async function loadEngine(options: EngineLoadOptions): Promise<Engine> {
  const modelDir = resolve(options.modelDir);
  const loaded = loadChatCheckpoint(modelDir);
  const checkpoint = { ...loaded, image: capImagePixels(loaded.image, options.maxImagePixels) };
  // Image resizing's worker threads boot while the model loads.
  sharedResizeWorkers().start();
  const model = await loadModel(modelDir, {
    device: options.device,
    precision: options.precision,
    cacheDir: options.cacheDir,
    onProgress: options.onProgress,
    onWarning: options.onWarning,
    graphCapture: options.graphCapture,
  });
  return createChatEngine(model, checkpoint, {
    modelName: options.modelName ?? basename(modelDir),
    conversationShelfBytes: options.keepConversations ? DEFAULT_SHELF_BYTES : 0,
  });
}
