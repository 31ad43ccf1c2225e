/**
 * Everything on the host side of a checkpoint directory: model config, tokenizer, chat
 * template, image processor settings and generation defaults. Reading these is cheap, so it
 * happens before the (slow) ONNX build, and a broken checkpoint fails fast.
 */
import { statSync } from 'node:fs';
import { readModelConfig, type Qwen3VLConfig } from '../checkpoint/config';
import { EngineError } from '../errors';
import { readGenerationDefaults, type GenerationDefaults } from '../generation/generation-config';
import { readImageProcessorConfig, type ImageProcessorConfig } from '../preprocess/image-config';
import { loadTokenizer, type TextTokenizer } from '../tokenizer/text-tokenizer';
import { loadChatTemplate, type ChatTemplate } from './chat-template';

export interface ChatCheckpoint {
  modelDir: string;
  model: Qwen3VLConfig;
  tokenizer: TextTokenizer;
  template: ChatTemplate;
  image: ImageProcessorConfig;
  generation: GenerationDefaults;
}

export function loadChatCheckpoint(modelDir: string): ChatCheckpoint {
  let isDirectory = false;
  try {
    isDirectory = statSync(modelDir).isDirectory();
  } catch {
    // reported below
  }
  if (!isDirectory) {
    throw new EngineError(
      'model_not_found',
      `Model directory ${modelDir} does not exist: pass a local Hugging Face Qwen3-VL checkpoint directory`,
    );
  }
  const model = readModelConfig(modelDir);
  const tokenizer = loadTokenizer(modelDir);
  const template = loadChatTemplate(modelDir, tokenizer.config);
  const image = readImageProcessorConfig(modelDir);
  const generation = readGenerationDefaults(modelDir, tokenizer);
  const imagePad = tokenizer.tokenId('<|image_pad|>');
  if (imagePad !== model.imageTokenId) {
    throw new EngineError(
      'bad_checkpoint',
      `${modelDir}: config.json says image_token_id ${model.imageTokenId} but the tokenizer maps <|image_pad|> to ${imagePad}`,
    );
  }
  if (generation.eosTokenIds.length === 0) {
    throw new EngineError(
      'bad_checkpoint',
      `${modelDir}: no stop token: generation_config.json has no eos_token_id and the tokenizer knows neither eos_token nor <|endoftext|>`,
    );
  }
  return { modelDir, model, tokenizer, template, image, generation };
}
