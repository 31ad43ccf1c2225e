/**
 * POST /v1/chat/completions: validates the request, waits for its turn on the engine, and
 * answers with one JSON body or a stream of server-sent events. The generation is cancelled
 * when the client goes away, when the request times out, or when the server shuts down.
 */
import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { performance } from 'node:perf_hooks';
import type { Engine, GenerationResult } from '../engine/contracts';
import { ApiError, clientClosed } from './api-error';
import { parseChatRequest, type ChatRequestLimits } from './chat-request';
import {
  chunkBody,
  completionBody,
  finishReasonOf,
  usageOf,
  type CompletionIdentity,
} from './completion-format';
import type { GenerationQueue } from './generation-queue';
import type { ServerMetrics } from './metrics';
import { readJsonBody } from './read-body';
import { DONE_EVENT, encodeEvent, encodeProgress, startEventStream } from './sse';

export interface ChatContext {
  engine: Engine;
  queue: GenerationQueue;
  metrics: ServerMetrics;
  limits: ChatRequestLimits & { maxBodyBytes: number; requestTimeoutMs: number };
  /** Fires when the server shuts down: running and waiting generations stop. */
  shutdown: AbortSignal;
  /** The server's error mapping (it logs unexpected errors with a reference). */
  toApiError: (error: unknown) => ApiError;
  log: (line: string) => void;
}

export async function handleChatCompletion(
  request: IncomingMessage,
  response: ServerResponse,
  context: ChatContext,
): Promise<void> {
  const arrived = performance.now();
  const { engine, limits, metrics } = context;
  const parsed = parseChatRequest(await readJsonBody(request, limits.maxBodyBytes), limits);
  const identity: CompletionIdentity = {
    id: `chatcmpl-${randomUUID()}`,
    created: Math.floor(Date.now() / 1000),
    model: engine.info.model,
  };

  const controller = new AbortController();
  const stopWith = (reason: ApiError) => {
    if (!controller.signal.aborted) controller.abort(reason);
  };
  const onClose = () => {
    if (!response.writableFinished) stopWith(clientClosed());
  };
  const onShutdown = () =>
    stopWith(
      new ApiError(503, 'server_unavailable', 'shutting_down', 'The server is shutting down'),
    );
  response.on('close', onClose);
  context.shutdown.addEventListener('abort', onShutdown, { once: true });
  if (context.shutdown.aborted) onShutdown();
  const timer = setTimeout(
    () =>
      stopWith(
        new ApiError(
          504,
          'timeout_error',
          'request_timeout',
          `The request did not finish within ${Math.round(limits.requestTimeoutMs / 1000)} s and was stopped`,
        ),
      ),
    limits.requestTimeoutMs,
  );

  let streaming = false;
  let firstToken = true;
  const startStream = () => {
    if (streaming || !parsed.stream || response.destroyed) return;
    streaming = true;
    startEventStream(response);
    response.write(encodeEvent(chunkBody(identity, { role: 'assistant', content: '' })));
  };

  try {
    const result: GenerationResult = await context.queue.run(
      () =>
        engine.generate(parsed.generate, {
          signal: controller.signal,
          // Headers wait until the prompt is accepted, so refusals still get their status.
          onPromptReady: startStream,
          onPromptProgress: (progress) => {
            if (streaming && !response.destroyed) response.write(encodeProgress(progress));
          },
          onText: (delta) => {
            if (firstToken) {
              firstToken = false;
              metrics.timeToFirstToken.observe((performance.now() - arrived) / 1000);
            }
            if (!parsed.stream || delta === '' || response.destroyed) return;
            startStream();
            response.write(encodeEvent(chunkBody(identity, { content: delta })));
          },
        }),
      controller.signal,
    );
    recordUsage(context, result);
    if (result.finishReason === 'cancelled') {
      throw controller.signal.reason instanceof ApiError
        ? controller.signal.reason
        : clientClosed();
    }
    if (parsed.stream) {
      startStream();
      const final = chunkBody(identity, {}, finishReasonOf(result), usageOf(result));
      response.end(encodeEvent(final) + DONE_EVENT);
    } else {
      sendJson(response, 200, completionBody(identity, result));
    }
  } catch (error) {
    // A stop we asked for (timeout, shutdown, client gone) is reported as such, however the
    // engine ended.
    const reason = controller.signal.reason;
    const failure = controller.signal.aborted && reason instanceof ApiError ? reason : error;
    if (!streaming) throw failure;
    // Headers are out: the error travels as a last event, as OpenAI does mid-stream.
    const apiError = context.toApiError(failure);
    if (apiError.status !== 499 && !response.destroyed) {
      response.end(encodeEvent(apiError.toJSON()) + DONE_EVENT);
    }
  } finally {
    clearTimeout(timer);
    response.off('close', onClose);
    context.shutdown.removeEventListener('abort', onShutdown);
  }
}

function recordUsage(context: ChatContext, result: GenerationResult): void {
  const { metrics } = context;
  const reused = result.stats?.reusedTokens ?? 0;
  metrics.promptTokens.inc(result.promptTokenIds.length);
  metrics.reusedPromptTokens.inc(reused);
  metrics.completionTokens.inc(result.tokenIds.length);
  const perTokenMs = result.timingsMs.perTokenMs;
  if (result.tokenIds.length > 1 && perTokenMs > 0)
    metrics.tokensPerSecond.observe(1000 / perTokenMs);
  context.log(
    `generation ${result.finishReason}: ${result.promptTokenIds.length} prompt (${reused} reused) + ${result.tokenIds.length} completion tokens ` +
      `in ${Math.round(result.timingsMs.totalMs)} ms (first token ${Math.round(result.timingsMs.firstTokenMs)} ms)`,
  );
}

export function sendJson(
  response: ServerResponse,
  status: number,
  body: unknown,
  headers: Record<string, string> = {},
): void {
  if (response.headersSent || response.destroyed) return;
  const text = JSON.stringify(body);
  response.writeHead(status, {
    'content-type': 'application/json; charset=utf-8',
    'content-length': String(Buffer.byteLength(text)),
    ...headers,
  });
  response.end(text);
}
