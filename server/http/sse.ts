/** Server-sent events as OpenAI streams them: `data: <json>` blocks ending in `data: [DONE]`. */
import type { ServerResponse } from 'node:http';

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
