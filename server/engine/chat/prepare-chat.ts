/**
 * Host-side preparation of one chat: images decoded and turned into patches (unless their layout
 * is already known), the checkpoint's template rendered, image pads expanded, ids tokenized,
 * MRoPE positions computed.
 */
import type { ChatMessage } from '../contracts';
import { computeRopeIndex } from '../positions/rope-index';
import type { ImageLimits } from '../preprocess/decode-image';
import { imageKey } from '../generation/image-cache';
import { preprocessImage } from '../preprocess/preprocess-image';
import { tokenizePrompt } from './build-prompt';
import type { ChatCheckpoint } from './chat-checkpoint';
import type { ImageLayout, ImageLayouts } from './image-layouts';
import { splitMessages } from './messages';

export interface PreparedImage extends ImageLayout {
  /** Content hash (imageKey). */
  key: string;
  bytes: Uint8Array;
  /** Present when this call preprocessed the image, absent when its layout was known. */
  pixelValues?: Float32Array;
}

export interface PreparedChat {
  /** Template output before pad expansion. */
  prompt: string;
  inputIds: number[];
  images: PreparedImage[];
  positionIds: [number[], number[], number[]];
  ropeDelta: number;
}

/**
 * `layouts`: images seen before are laid out from it without touching their pixels; the ones
 * preprocessed here are added to it.
 */
export async function prepareChat(
  messages: readonly ChatMessage[],
  checkpoint: ChatCheckpoint,
  limits?: ImageLimits,
  layouts?: ImageLayouts,
): Promise<PreparedChat> {
  const { templateMessages, images: imageBytes } = splitMessages(messages);
  const images: PreparedImage[] = [];
  for (const bytes of imageBytes) {
    const key = imageKey(bytes);
    const known = layouts?.get(key);
    if (known) {
      images.push({ ...known, key, bytes });
      continue;
    }
    const { gridThw, tokens, pixelValues } = await preprocessImage(bytes, checkpoint.image, limits);
    layouts?.set(key, { gridThw, tokens });
    images.push({ gridThw, tokens, key, bytes, pixelValues });
  }
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

/**
 * Tokenizes the conversation as a follow-up turn will render it, the answer appended (and an
 * empty message after it), so that the tokenizer's piece cache (tokenizer/piece-cache.ts)
 * holds the answer before that turn asks: a refinement's first token then waits for the new
 * message's tokens only. Run while the user reads the answer; a failure only loses the head
 * start.
 */
export function warmNextTurn(
  messages: readonly ChatMessage[],
  answer: string,
  checkpoint: ChatCheckpoint,
): void {
  if (!answer) return;
  try {
    const { templateMessages } = splitMessages([
      ...messages,
      { role: 'assistant', content: answer },
      { role: 'user', content: '' },
    ]);
    checkpoint.tokenizer.encode(checkpoint.template.render(templateMessages));
  } catch {
    // The turn itself will tokenize (and report any error).
  }
}

/** The image's pixel_values: this call's, or decoded now when its layout was known. */
export async function imagePixels(
  image: PreparedImage,
  checkpoint: ChatCheckpoint,
  limits?: ImageLimits,
): Promise<Float32Array> {
  return (
    image.pixelValues ?? (await preprocessImage(image.bytes, checkpoint.image, limits)).pixelValues
  );
}
