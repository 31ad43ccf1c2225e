/**
 * `generation_config.json`: stop ids and sampling defaults. Checkpoints that ship none (or an
 * empty one) fall back to the tokenizer's eos_token plus `<|endoftext|>`, which is what Qwen
 * chat models stop on.
 */
import { readCheckpointJson, type Json } from '../tokenizer/read-json';
import type { TextTokenizer } from '../tokenizer/text-tokenizer';

export interface GenerationDefaults {
  eosTokenIds: number[];
  doSample: boolean;
  temperature: number;
  topK: number;
  topP: number;
  repetitionPenalty: number;
  /** From generation_config.json's max_new_tokens, if given. */
  maxNewTokens?: number;
}

export function readGenerationDefaults(
  modelDir: string,
  tokenizer: TextTokenizer,
): GenerationDefaults {
  const raw = readCheckpointJson(modelDir, 'generation_config.json', true) ?? {};
  return parseGenerationDefaults(raw, tokenizer);
}

export function parseGenerationDefaults(
  raw: Json,
  tokenizer: Pick<TextTokenizer, 'tokenId' | 'config'>,
): GenerationDefaults {
  const eos = new Set<number>();
  const configured = raw.eos_token_id;
  for (const id of Array.isArray(configured) ? configured : [configured]) {
    if (typeof id === 'number') eos.add(id);
  }
  if (eos.size === 0) {
    const eosToken = tokenizer.config.eos_token;
    const names = [typeof eosToken === 'string' ? eosToken : undefined, '<|endoftext|>'];
    for (const name of names) {
      const id = name ? tokenizer.tokenId(name) : undefined;
      if (id !== undefined) eos.add(id);
    }
  }
  return {
    eosTokenIds: [...eos],
    doSample: raw.do_sample === true,
    temperature: numberOr(raw.temperature, 1),
    topK: numberOr(raw.top_k, 50),
    topP: numberOr(raw.top_p, 1),
    repetitionPenalty: numberOr(raw.repetition_penalty, 1),
    maxNewTokens: typeof raw.max_new_tokens === 'number' ? raw.max_new_tokens : undefined,
  };
}

function numberOr(value: unknown, fallback: number): number {
  return typeof value === 'number' && Number.isFinite(value) ? value : fallback;
}
