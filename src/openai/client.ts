/**
 * Streams a chat completion from an OpenAI-compatible endpoint (POST /v1/chat/completions,
 * stream: true, server-sent events). Each text delta goes to `onDelta`; every failure becomes
 * a ChatFailure with a clear message. Stopping goes through the AbortSignal.
 */
import { createParser, type EventSourceMessage } from 'eventsource-parser';
import {
  ChatFailure,
  failureFromNetwork,
  failureFromStatus,
  malformedStream,
  stalledStream,
  type FailureContext,
} from './errors';
import { apiBaseUrl } from './endpointUrl';
import type { ChatRequest, PromptProgress, StreamStats } from './types';

export interface StreamOptions {
  /** Base URL, e.g. http://127.0.0.1:8080/v1 (see apiBaseUrl for what else is accepted). */
  endpoint: string;
  apiKey?: string;
  request: ChatRequest;
  signal?: AbortSignal;
  /** Whether this is the local server (changes the actions offered on failure). */
  local: boolean;
  onDelta: (delta: string, stats: { tokens: number; elapsedMs: number }) => void;
  /**
   * How far the server has read the prompt before the first token: the local server streams it
   * as comment lines (`: progress {"stage":"image","done":3,"total":24}`); others send none.
   */
  onPromptProgress?: (progress: PromptProgress) => void;
  fetchImpl?: typeof fetch;
  /** Longest silence allowed once the reply has started (default STREAM_STALL_MS). */
  stallMs?: number;
}

/**
 * A model that is streaming never pauses this long between tokens; a reply that goes quiet
 * for two minutes is a hung server or a dead connection (a proxy that keeps the socket open),
 * and would otherwise spin forever. Before the reply starts there is no limit: loading a model
 * or reading a large image on a slow machine can legitimately take minutes (Stop is there).
 */
export const STREAM_STALL_MS = 120_000;

export function chatCompletionsUrl(endpoint: string): string {
  return `${apiBaseUrl(endpoint)}/chat/completions`;
}

interface ChunkShape {
  choices?: { delta?: { content?: string | null }; finish_reason?: string | null }[];
  usage?: { completion_tokens?: number } | null;
  error?: { message?: string } | string;
}

/**
 * The request again, without what the endpoint refused, or undefined when nothing can be
 * adapted. Local servers (Ollama, llama.cpp, LM Studio, vLLM) take max_tokens, yet OpenAI's
 * newer models reject it for max_completion_tokens; some servers reject stream_options.
 */
export function adaptToRefusal(
  body: Record<string, unknown>,
  errorBody: string,
): Record<string, unknown> | undefined {
  // OpenAI: "Unsupported parameter: 'max_tokens' is not supported with this model. Use
  // 'max_completion_tokens' instead." (vLLM's "'max_tokens' or 'max_completion_tokens' is too
  // large" names both and is not a refusal of the field.)
  if (
    'max_tokens' in body &&
    /max_tokens\W+is not supported|use\W+max_completion_tokens/i.test(errorBody)
  ) {
    const { max_tokens: limit, ...rest } = body;
    return { ...rest, max_completion_tokens: limit };
  }
  if ('stream_options' in body && /stream_options/.test(errorBody)) {
    const { stream_options: _ignored, ...rest } = body;
    return rest;
  }
  return undefined;
}

export async function streamChatCompletion(options: StreamOptions): Promise<StreamStats> {
  const context: FailureContext = {
    endpoint: options.endpoint,
    model: options.request.model,
    local: options.local,
    keySent: Boolean(options.apiKey),
  };
  const started = Date.now();
  const headers: Record<string, string> = {
    'content-type': 'application/json',
    accept: 'text/event-stream',
  };
  if (options.apiKey) headers['authorization'] = `Bearer ${options.apiKey}`;

  let body: Record<string, unknown> = {
    ...options.request,
    stream: true,
    stream_options: { include_usage: true },
  };
  let response: Response;
  for (;;) {
    try {
      response = await (options.fetchImpl ?? fetch)(chatCompletionsUrl(options.endpoint), {
        method: 'POST',
        headers,
        body: JSON.stringify(body),
        signal: options.signal,
      });
    } catch (error) {
      throw failureFromNetwork(error, context);
    }
    if (response.ok) break;
    const errorBody = await response.text().catch(() => '');
    const adapted = response.status === 400 ? adaptToRefusal(body, errorBody) : undefined;
    if (!adapted) throw failureFromStatus(response.status, errorBody, context);
    body = adapted;
  }
  if (!response.body) throw malformedStream('the response has no body', context);

  let text = '';
  let chunks = 0;
  let usageTokens: number | undefined;
  let finishReason: string | undefined;
  let done = false;
  let failure: ChatFailure | undefined;

  const onEvent = (event: EventSourceMessage): void => {
    if (done || failure) return;
    if (event.data.trim() === '[DONE]') {
      done = true;
      return;
    }
    let chunk: ChunkShape;
    try {
      chunk = JSON.parse(event.data) as ChunkShape;
    } catch {
      failure = malformedStream(`an event is not JSON: ${event.data.slice(0, 80)}`, context);
      return;
    }
    if (chunk.error) {
      const message = typeof chunk.error === 'string' ? chunk.error : (chunk.error.message ?? '');
      failure = failureFromStatus(500, JSON.stringify({ error: { message } }), context);
      return;
    }
    if (chunk.usage?.completion_tokens !== undefined) usageTokens = chunk.usage.completion_tokens;
    const choice = chunk.choices?.[0];
    // Usage-only events, and Azure's prompt_filter_results events, carry no choice.
    if (!choice) return;
    if (choice.finish_reason) finishReason = choice.finish_reason;
    const delta = choice.delta?.content;
    if (typeof delta === 'string' && delta.length > 0) {
      text += delta;
      chunks++;
      options.onDelta(delta, { tokens: usageTokens ?? chunks, elapsedMs: Date.now() - started });
    }
  };
  const onComment = (comment: string): void => {
    const progress = parsePromptProgress(comment);
    if (progress && !done && !failure && chunks === 0) options.onPromptProgress?.(progress);
  };
  const parser = createParser({ onEvent, onComment });

  const decoder = new TextDecoder();
  const reader = response.body.getReader();
  const stallMs = options.stallMs ?? STREAM_STALL_MS;
  let stalled: ChatFailure | undefined;
  const read = async () => {
    if (chunks === 0) return reader.read();
    let timer: NodeJS.Timeout | undefined;
    const silence = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        stalled = stalledStream(Math.round(stallMs / 1000), context);
        reject(stalled);
      }, stallMs);
    });
    try {
      return await Promise.race([reader.read(), silence]);
    } finally {
      clearTimeout(timer);
    }
  };
  try {
    for (;;) {
      const { value, done: ended } = await read();
      if (ended) break;
      parser.feed(decoder.decode(value, { stream: true }));
      if (failure) throw failure;
      if (done) break;
    }
  } catch (error) {
    if (error instanceof ChatFailure) throw error;
    throw failureFromNetwork(error, context);
  } finally {
    // A stalled read is still pending: cancel the body (closing the connection), which
    // settles it, before the lock can go.
    if (done || failure || stalled) await reader.cancel().catch(() => undefined);
    reader.releaseLock();
  }
  if (!done && finishReason === undefined) {
    throw malformedStream('the stream ended before [DONE]', context);
  }
  return { text, tokens: usageTokens ?? chunks, finishReason, elapsedMs: Date.now() - started };
}

/** A `progress {...}` comment of the local server, or undefined for any other comment. */
export function parsePromptProgress(comment: string): PromptProgress | undefined {
  const match = /^\s*progress (\{.*\})\s*$/.exec(comment);
  if (!match) return undefined;
  try {
    const { stage, done, total } = JSON.parse(match[1]) as Record<string, unknown>;
    if (stage !== 'image' && stage !== 'prompt') return undefined;
    if (typeof done !== 'number' || typeof total !== 'number' || !(total > 0)) return undefined;
    return { stage, done: Math.min(Math.max(done, 0), total), total };
  } catch {
    return undefined;
  }
}
