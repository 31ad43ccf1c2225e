/**
 * Host-side preparation of one chat: images decoded and turned into patches, the checkpoint's
 * template rendered, image pads expanded, ids tokenized, MRoPE positions computed.
 */
import type { ChatMessage } from '../contracts';
import { computeRopeIndex } from '../positions/rope-index';
import type { ImageLimits } from '../preprocess/decode-image';
import { preprocessImage, type PreprocessedImage } from '../preprocess/preprocess-image';
import { tokenizePrompt } from './build-prompt';
import type { ChatCheckpoint } from './chat-checkpoint';
import { splitMessages } from './messages';

export interface PreparedChat {
  /** Template output before pad expansion. */
  prompt: string;
  inputIds: number[];
  images: PreprocessedImage[];
  positionIds: [number[], number[], number[]];
  ropeDelta: number;
}

export async function prepareChat(
  messages: readonly ChatMessage[],
  checkpoint: ChatCheckpoint,
  limits?: ImageLimits,
): Promise<PreparedChat> {
  const { templateMessages, images: imageBytes } = splitMessages(messages);
  const images: PreprocessedImage[] = [];
  for (const bytes of imageBytes)
    images.push(await preprocessImage(bytes, checkpoint.image, limits));
  const rendered = checkpoint.template.render(templateMessages);
  const { prompt, inputIds } = tokenizePrompt(
    rendered,
    images.map((image) => image.tokens),
    checkpoint.tokenizer,
    checkpoint.model.imageTokenId,
  );
  const { positionIds, ropeDelta } = computeRopeIndex(
    inputIds,
    images.map((image) => image.gridThw),
    checkpoint.model.imageTokenId,
    checkpoint.image.mergeSize,
  );
  return { prompt, inputIds, images, positionIds, ropeDelta };
}
