/**
 * Validates an OpenAI chat-completions request body and turns it into the engine's
 * GenerateRequest. Images must be inline `data:` URLs (the server never fetches URLs).
 */
import type { ChatMessage, ChatPart, GenerateRequest, SamplingOptions } from '../engine/contracts';
import { ApiError, badRequest } from './api-error';

export const IMAGE_TYPES = ['image/png', 'image/jpeg', 'image/webp', 'image/gif'] as const;

export interface ChatRequestLimits {
  /** Largest decoded image, in bytes. */
  maxImageBytes: number;
  maxImages: number;
}

export interface ParsedChatRequest {
  generate: GenerateRequest;
  stream: boolean;
  /** Model name the client asked for (informational: the server serves one model). */
  model?: string;
}

type Json = Record<string, unknown>;

const isObject = (value: unknown): value is Json =>
  typeof value === 'object' && value !== null && !Array.isArray(value);

export function parseChatRequest(body: unknown, limits: ChatRequestLimits): ParsedChatRequest {
  if (!isObject(body))
    throw badRequest('invalid_request', 'The request body must be a JSON object');
  const images = { count: 0 };
  const messages = parseMessages(body.messages, limits, images);

  const stream = optional(body, 'stream', 'boolean') ?? false;
  const n = optional(body, 'n', 'number');
  if (n !== undefined && n !== 1) throw badRequest('invalid_value', 'Only n = 1 is supported', 'n');
  // 0 (beyond OpenAI's API): read the prompt into the KV cache and generate nothing, so that a
  // request extending it soon after runs only its own new tokens.
  const maxTokens =
    optionalInteger(body, 'max_completion_tokens', 0) ?? optionalInteger(body, 'max_tokens', 0);
  const sampling = parseSampling(body);
  const stop = parseStop(body.stop);
  return {
    generate: {
      messages,
      ...(maxTokens !== undefined && { maxNewTokens: maxTokens }),
      sampling,
      ...(stop && { stop }),
    },
    stream,
    model: optional(body, 'model', 'string'),
  };
}

function parseMessages(
  value: unknown,
  limits: ChatRequestLimits,
  images: { count: number },
): ChatMessage[] {
  if (!Array.isArray(value)) {
    throw badRequest('invalid_value', '"messages" must be a list of chat messages', 'messages');
  }
  if (value.length === 0) {
    throw badRequest(
      'invalid_value',
      '"messages" is empty: send at least one user message',
      'messages',
    );
  }
  return value.map((message, index) => {
    const where = `messages[${index}]`;
    if (!isObject(message)) throw badRequest('invalid_value', `${where} must be an object`, where);
    const role = message.role === 'developer' ? 'system' : message.role;
    if (role !== 'system' && role !== 'user' && role !== 'assistant') {
      throw badRequest(
        'invalid_value',
        `${where}.role must be "system", "user" or "assistant", not ${JSON.stringify(message.role)}`,
        `${where}.role`,
      );
    }
    const content = message.content;
    if (typeof content === 'string') return { role, content };
    if (!Array.isArray(content)) {
      throw badRequest(
        'invalid_value',
        `${where}.content must be a string or a list of parts`,
        `${where}.content`,
      );
    }
    const parts = content.map((part, partIndex) =>
      parsePart(part, `${where}.content[${partIndex}]`, limits, images),
    );
    return { role, content: parts };
  });
}

function parsePart(
  part: unknown,
  where: string,
  limits: ChatRequestLimits,
  images: { count: number },
): ChatPart {
  if (!isObject(part)) throw badRequest('invalid_value', `${where} must be an object`, where);
  if (part.type === 'text') {
    if (typeof part.text !== 'string')
      throw badRequest('invalid_value', `${where}.text must be a string`, where);
    return { type: 'text', text: part.text };
  }
  if (part.type === 'image_url') {
    const imageUrl = part.image_url;
    const url = isObject(imageUrl) ? imageUrl.url : imageUrl;
    if (typeof url !== 'string') {
      throw badRequest('invalid_value', `${where}.image_url.url must be a string`, where);
    }
    if (++images.count > limits.maxImages) {
      throw badRequest('too_many_images', `At most ${limits.maxImages} images per request`, where);
    }
    return { type: 'image', image: decodeDataUrl(url, where, limits) };
  }
  throw badRequest(
    'invalid_value',
    `${where}.type must be "text" or "image_url", not ${JSON.stringify(part.type)}`,
    where,
  );
}

/** `data:image/png;base64,...` -> bytes, checking the media type and the decoded size. */
export function decodeDataUrl(url: string, where: string, limits: ChatRequestLimits): Uint8Array {
  const match = url.match(/^data:([^;,]*)((?:;[^;,]*)*),/);
  if (!match) {
    throw badRequest(
      'invalid_image_url',
      `${where}: only inline data: URLs are accepted (data:image/png;base64,...); the server does not fetch ${url.slice(0, 40)}`,
      where,
    );
  }
  const type = match[1].toLowerCase();
  if (!(IMAGE_TYPES as readonly string[]).includes(type)) {
    throw badRequest(
      'unsupported_image_type',
      `${where}: unsupported image type "${type || 'none'}"; send ${IMAGE_TYPES.join(', ')}`,
      where,
    );
  }
  if (!match[2].split(';').includes('base64')) {
    throw badRequest('invalid_image_url', `${where}: the data: URL must be base64-encoded`, where);
  }
  const payload = url.slice(match[0].length);
  // Decoded size from the base64 length, checked before allocating anything.
  const decodedBytes = Math.floor((payload.replace(/=+$/, '').length * 3) / 4);
  if (decodedBytes > limits.maxImageBytes) {
    throw new ApiError(
      413,
      'invalid_request_error',
      'image_too_large',
      `${where}: the image is ${decodedBytes} bytes; the limit is ${limits.maxImageBytes} bytes`,
      where,
    );
  }
  if (!/^[A-Za-z0-9+/_-]*={0,2}$/.test(payload)) {
    throw badRequest('invalid_image_url', `${where}: the data: URL is not valid base64`, where);
  }
  return new Uint8Array(Buffer.from(payload, 'base64'));
}

function parseSampling(body: Json): SamplingOptions {
  const temperature = optionalNumber(body, 'temperature', 0, 2);
  const topP = optionalNumber(body, 'top_p', 0, 1);
  const topK = optionalInteger(body, 'top_k', -1);
  const seed = optionalInteger(body, 'seed', Number.MIN_SAFE_INTEGER);
  const repetitionPenalty = optionalNumber(body, 'repetition_penalty', 0, 10);
  if (topP === 0) throw badRequest('invalid_value', '"top_p" must be greater than 0', 'top_p');
  const sampling: SamplingOptions = {};
  // OpenAI's temperature 0 (and top_k 1) mean: always the most likely token.
  if (temperature === 0 || topK === 1) sampling.greedy = true;
  if (temperature !== undefined && temperature > 0) sampling.temperature = temperature;
  if (topP !== undefined) sampling.topP = topP;
  // top_k -1 or 0 (vLLM's spelling) turns top-k off; left out, the checkpoint's top_k applies.
  if (topK !== undefined) sampling.topK = Math.max(topK, 0);
  if (seed !== undefined) sampling.seed = seed;
  if (repetitionPenalty !== undefined) sampling.repetitionPenalty = repetitionPenalty;
  return sampling;
}

function parseStop(value: unknown): string[] | undefined {
  if (value === undefined || value === null) return undefined;
  const list = typeof value === 'string' ? [value] : value;
  if (
    !Array.isArray(list) ||
    list.length > 4 ||
    !list.every((item) => typeof item === 'string' && item.length > 0)
  ) {
    throw badRequest(
      'invalid_value',
      '"stop" must be a non-empty string or a list of up to 4',
      'stop',
    );
  }
  return list as string[];
}

function optional<T extends 'string' | 'boolean' | 'number'>(
  body: Json,
  key: string,
  type: T,
): (T extends 'string' ? string : T extends 'boolean' ? boolean : number) | undefined {
  const value = body[key];
  if (value === undefined || value === null) return undefined;
  if (typeof value !== type) throw badRequest('invalid_type', `"${key}" must be a ${type}`, key);
  return value as never;
}

function optionalNumber(body: Json, key: string, min: number, max: number): number | undefined {
  const value = optional(body, key, 'number');
  if (value !== undefined && !(value >= min && value <= max)) {
    throw badRequest(
      'invalid_value',
      `"${key}" must be between ${min} and ${max}, not ${value}`,
      key,
    );
  }
  return value;
}

function optionalInteger(body: Json, key: string, min: number): number | undefined {
  const value = optional(body, key, 'number');
  if (value !== undefined && !(Number.isSafeInteger(value) && value >= min)) {
    throw badRequest(
      'invalid_value',
      `"${key}" must be an integer of at least ${min}, not ${value}`,
      key,
    );
  }
  return value;
}
