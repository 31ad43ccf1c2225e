/** A small OpenAI-style client for the server tests: JSON requests and SSE streams over loopback. */
import { request as httpRequest } from 'node:http';
import { createParser } from 'eventsource-parser';

export interface ServerHandle {
  url: string;
  token: string;
}

export interface JsonReply {
  status: number;
  headers: Headers;
  body: any;
}

export async function callJson(
  server: ServerHandle,
  path: string,
  body?: unknown,
  init: { token?: string | null; headers?: Record<string, string>; rawBody?: string } = {},
): Promise<JsonReply> {
  const token = init.token === undefined ? server.token : init.token;
  const response = await fetch(`${server.url}${path}`, {
    method: body === undefined && init.rawBody === undefined ? 'GET' : 'POST',
    headers: {
      ...(body !== undefined && { 'content-type': 'application/json' }),
      ...(token !== null && { authorization: `Bearer ${token}` }),
      ...init.headers,
    },
    body: init.rawBody ?? (body === undefined ? undefined : JSON.stringify(body)),
  });
  const text = await response.text();
  let parsed: unknown = text;
  try {
    parsed = JSON.parse(text);
  } catch {
    // Not JSON (e.g. /metrics): keep the text.
  }
  return { status: response.status, headers: response.headers, body: parsed };
}

export interface StreamEvents {
  status: number;
  /** Parsed `data:` payloads in order, `[DONE]` kept as the string. */
  events: any[];
  /** Comment lines (`: ...`), which OpenAI clients skip. */
  comments: string[];
  text: string;
}

/**
 * Streams a chat completion. `onEvent` sees each event as it arrives and may return 'abort' to
 * drop the connection there, as a client that goes away would.
 */
export async function streamChat(
  server: ServerHandle,
  body: Record<string, unknown>,
  onEvent: (event: any, index: number) => 'abort' | void = () => {},
): Promise<StreamEvents & { aborted: boolean }> {
  const controller = new AbortController();
  const response = await fetch(`${server.url}/v1/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${server.token}` },
    body: JSON.stringify({ ...body, stream: true }),
    signal: controller.signal,
  });
  const result = {
    status: response.status,
    events: [] as unknown[],
    comments: [] as string[],
    text: '',
    aborted: false,
  };
  if (!response.ok || !response.body) {
    result.events.push(await response.json());
    return result;
  }
  const parser = createParser({
    onComment: (comment) => result.comments.push(comment.trim()),
    onEvent: (message) => {
      const event = message.data === '[DONE]' ? '[DONE]' : JSON.parse(message.data);
      result.events.push(event);
      const delta = event?.choices?.[0]?.delta?.content;
      if (typeof delta === 'string') result.text += delta;
      if (!result.aborted && onEvent(event, result.events.length - 1) === 'abort') {
        result.aborted = true;
        controller.abort();
      }
    },
  });
  const decoder = new TextDecoder();
  try {
    for await (const chunk of response.body as unknown as AsyncIterable<Uint8Array>) {
      parser.feed(decoder.decode(chunk, { stream: true }));
      if (result.aborted) break;
    }
  } catch (error) {
    if (!result.aborted) throw error;
  }
  return result;
}

/** A raw request with full control of the headers (fetch will not send a foreign Host). */
export function rawRequest(
  url: string,
  options: { method?: string; headers?: Record<string, string>; body?: Buffer },
): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const request = httpRequest(
      url,
      { method: options.method ?? 'GET', headers: options.headers },
      (response) => {
        const chunks: Buffer[] = [];
        response.on('data', (chunk: Buffer) => chunks.push(chunk));
        response.on('end', () =>
          resolve({ status: response.statusCode ?? 0, body: Buffer.concat(chunks).toString() }),
        );
        response.on('error', reject);
      },
    );
    // The server may answer (413) and close before the whole body is sent: that is its right.
    request.on('error', (error) => reject(error));
    request.end(options.body);
  });
}
