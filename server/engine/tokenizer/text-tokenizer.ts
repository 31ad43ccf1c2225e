/**
 * The checkpoint's own tokenizer (tokenizer.json + tokenizer_config.json) behind the three
 * operations the engine needs: encode a rendered prompt, decode generated ids, look up a token.
 */
import { Tokenizer } from '@huggingface/tokenizers';
import { EngineError } from '../errors';
import { type AddedToken, PieceCache } from './piece-cache';
import { readCheckpointJson, type Json } from './read-json';

export interface TextTokenizer {
  /** Encodes text in which special tokens (e.g. `<|im_start|>`) are written literally. */
  encode(text: string): number[];
  /** Decodes ids, leaving out special tokens. Incomplete UTF-8 at the end shows as U+FFFD. */
  decode(ids: readonly number[]): string;
  /** The id of a token written as text, or undefined. */
  tokenId(token: string): number | undefined;
  /** tokenizer_config.json, for the chat template's special-token variables. */
  readonly config: Json;
}

export function loadTokenizer(modelDir: string): TextTokenizer {
  const json = readCheckpointJson(modelDir, 'tokenizer.json');
  const config = readCheckpointJson(modelDir, 'tokenizer_config.json');
  let tokenizer: Tokenizer;
  try {
    tokenizer = new Tokenizer(json, config);
  } catch (error) {
    throw new EngineError(
      'bad_checkpoint',
      `${modelDir}/tokenizer.json is not a tokenizer this engine can load: ${(error as Error).message}`,
      { cause: error },
    );
  }
  const encode = (text: string) => tokenizer.encode(text, { add_special_tokens: false }).ids;
  const added = Array.isArray(json.added_tokens) ? (json.added_tokens as AddedToken[]) : [];
  const pieces = PieceCache.create(added, encode);
  return {
    config,
    encode: pieces ? (text) => pieces.encode(text) : encode,
    decode: (ids) =>
      ids.length === 0 ? '' : tokenizer.decode(ids as number[], { skip_special_tokens: true }),
    tokenId: (token) => tokenizer.token_to_id(token),
  };
}
