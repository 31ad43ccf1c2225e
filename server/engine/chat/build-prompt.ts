/**
 * Chat template text -> token ids with every `<|image_pad|>` expanded to the number of merged
 * visual tokens of its image (grid_t*grid_h*grid_w / merge^2), as Qwen3VLProcessor does.
 * The text between pads is tokenized piece by piece: special tokens are split out before BPE,
 * so this gives the same ids as tokenizing the expanded string, without a 16k-token string.
 */
import { EngineError } from '../errors';
import type { TextTokenizer } from '../tokenizer/text-tokenizer';

export const IMAGE_PAD = '<|image_pad|>';

export interface BuiltPrompt {
  /** The template's output, pads not yet expanded. */
  prompt: string;
  inputIds: number[];
}

export function tokenizePrompt(
  prompt: string,
  imageTokenCounts: readonly number[],
  tokenizer: TextTokenizer,
  imageTokenId: number,
): BuiltPrompt {
  const pieces = prompt.split(IMAGE_PAD);
  if (pieces.length - 1 !== imageTokenCounts.length) {
    throw new EngineError(
      'bad_request',
      `The prompt has ${pieces.length - 1} ${IMAGE_PAD} placeholders for ${imageTokenCounts.length} images: message text must not contain ${IMAGE_PAD}`,
    );
  }
  const inputIds: number[] = [];
  pieces.forEach((piece, index) => {
    if (piece) for (const id of tokenizer.encode(piece)) inputIds.push(id);
    if (index < imageTokenCounts.length) {
      for (let i = 0; i < imageTokenCounts[index]; i++) inputIds.push(imageTokenId);
    }
  });
  return { prompt, inputIds };
}
