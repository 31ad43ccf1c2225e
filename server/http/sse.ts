/** Server-sent events as OpenAI streams them: `data: <json>` blocks ending in `data: [DONE]`. */
import type { ServerResponse } from 'node:http';
import type { PromptProgress } from '../engine/contracts';

export function startEventStream(response: ServerResponse): void {
  response.writeHead(200, {
    'content-type': 'text/event-stream; charset=utf-8',
    'cache-control': 'no-cache',
    connection: 'keep-alive',
    'x-accel-buffering': 'no',
  });
  response.flushHeaders();
}

export function encodeEvent(data: unknown): string {
  return `data: ${JSON.stringify(data)}\n\n`;
}

export const DONE_EVENT = 'data: [DONE]\n\n';

/**
 * How far the prompt has been read, as a comment line (`: progress {"stage":"image","done":3,
 * "total":24}`): server-sent event clients skip comments, so OpenAI clients see the stream they
 * expect, and the extension shows the progress (src/openai/client.ts).
 */
export function encodeProgress(progress: PromptProgress): string {
  return `: progress ${JSON.stringify(progress)}\n\n`;
}
