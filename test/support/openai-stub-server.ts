/**
 * A loopback stand-in for a remote OpenAI-compatible endpoint (a party outside the project):
 * it streams a known reply as chat completion chunks, and can be told to fail the way real
 * endpoints do. Used by the unit tests of the streaming client and the extension-host suites.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface StubBehaviour {
  /** The reply, split into these deltas (one SSE event each). */
  deltas: string[];
  /** Milliseconds between deltas (lets a test stop a stream in the middle). */
  delayMs?: number;
  /** Answer with this HTTP status and OpenAI error body instead of streaming. */
  status?: number;
  /** Required bearer token; requests without it get 401. */
  apiKey?: string;
  /** Models served; another model gets 404. */
  models?: string[];
  /** Send this raw text as the body instead of a valid stream. */
  rawBody?: string;
  /** Close the connection after this many deltas, without [DONE]. */
  dropAfter?: number;
  /** Go silent after this many deltas, keeping the connection open (a hung server). */
  stallAfter?: number;
  /** Milliseconds between the response headers and the first delta (a slow prefill). */
  startDelayMs?: number;
  /** Request fields this endpoint refuses with HTTP 400 and this message (as OpenAI does). */
  refuses?: Record<string, string>;
  /** Events sent before the first delta (e.g. Azure's prompt_filter_results with no choices). */
  preamble?: unknown[];
  /** Comment lines sent before the first delta (the local server's prompt progress). */
  comments?: string[];
  /** Milliseconds before GET /v1/models answers (an endpoint that hangs). */
  modelsDelayMs?: number;
  /** The finish_reason of the last choice ('stop' unless set; 'length' when cut off). */
  finishReason?: string;
}

export interface RecordedRequest {
  path: string;
  headers: IncomingMessage['headers'];
  body: unknown;
}

export interface OpenAiStub {
  /** Base URL ending in /v1. */
  url: string;
  behaviour: StubBehaviour;
  requests: RecordedRequest[];
  /** Resolves when a streaming client went away before the end. */
  clientClosedEarly: Promise<void>;
  close(): Promise<void>;
}

function sendError(response: ServerResponse, status: number, message: string): void {
  response.writeHead(status, { 'content-type': 'application/json' });
  response.end(JSON.stringify({ error: { message, type: 'stub_error', code: status } }));
}

export async function startOpenAiStub(behaviour: StubBehaviour): Promise<OpenAiStub> {
  const requests: RecordedRequest[] = [];
  let markClosedEarly!: () => void;
  const clientClosedEarly = new Promise<void>((resolve) => (markClosedEarly = resolve));

  const stub: Partial<OpenAiStub> = { behaviour, requests, clientClosedEarly };

  const server: Server = createServer((request, response) => {
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('end', () => void handle(request, response, Buffer.concat(chunks).toString('utf8')));
  });

  async function handle(
    request: IncomingMessage,
    response: ServerResponse,
    raw: string,
  ): Promise<void> {
    const b = stub.behaviour!;
    let body: unknown;
    try {
      body = raw ? JSON.parse(raw) : undefined;
    } catch {
      return sendError(response, 400, 'malformed JSON');
    }
    requests.push({ path: request.url ?? '', headers: request.headers, body });
    if (b.apiKey && request.headers.authorization !== `Bearer ${b.apiKey}`) {
      return sendError(response, 401, 'Incorrect API key provided.');
    }
    if (request.method === 'GET' && request.url === '/v1/models') {
      if (b.modelsDelayMs) await new Promise((resolve) => setTimeout(resolve, b.modelsDelayMs));
      if (response.destroyed) return;
      response.writeHead(200, { 'content-type': 'application/json' });
      response.end(
        JSON.stringify({
          object: 'list',
          data: (b.models ?? []).map((id) => ({ id, object: 'model' })),
        }),
      );
      return;
    }
    if (request.method !== 'POST' || request.url !== '/v1/chat/completions') {
      return sendError(response, 404, `no route ${request.method} ${request.url}`);
    }
    if (b.status) return sendError(response, b.status, `stub failure ${b.status}`);
    for (const [field, message] of Object.entries(b.refuses ?? {})) {
      if (body && typeof body === 'object' && field in body) {
        response.writeHead(400, { 'content-type': 'application/json' });
        response.end(
          JSON.stringify({
            error: { message, type: 'invalid_request_error', param: field, code: null },
          }),
        );
        return;
      }
    }
    const model = (body as { model?: string }).model ?? '';
    if (b.models && !b.models.includes(model)) {
      return sendError(response, 404, `The model \`${model}\` does not exist.`);
    }
    response.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
    if (b.rawBody !== undefined) {
      response.end(b.rawBody);
      return;
    }
    let finished = false;
    response.on('close', () => {
      if (!finished) markClosedEarly();
    });
    const id = 'chatcmpl-stub';
    const event = (payload: unknown): void => {
      response.write(`data: ${JSON.stringify(payload)}\n\n`);
    };
    for (const payload of b.preamble ?? []) event(payload);
    for (const comment of b.comments ?? []) response.write(`: ${comment}\n\n`);
    if (b.startDelayMs) await new Promise((resolve) => setTimeout(resolve, b.startDelayMs));
    for (const [index, delta] of b.deltas.entries()) {
      if (response.destroyed) return;
      if (b.dropAfter !== undefined && index >= b.dropAfter) {
        response.destroy();
        return;
      }
      if (b.stallAfter !== undefined && index >= b.stallAfter) return; // until the client leaves
      event({
        id,
        object: 'chat.completion.chunk',
        model,
        choices: [{ index: 0, delta: { content: delta }, finish_reason: null }],
      });
      if (b.delayMs) await new Promise((resolve) => setTimeout(resolve, b.delayMs));
    }
    if (response.destroyed) return;
    event({
      id,
      object: 'chat.completion.chunk',
      model,
      choices: [{ index: 0, delta: {}, finish_reason: b.finishReason ?? 'stop' }],
    });
    event({
      id,
      object: 'chat.completion.chunk',
      model,
      choices: [],
      usage: {
        prompt_tokens: 10,
        completion_tokens: b.deltas.length,
        total_tokens: 10 + b.deltas.length,
      },
    });
    response.write('data: [DONE]\n\n');
    finished = true;
    response.end();
  }

  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  stub.url = `http://127.0.0.1:${port}/v1`;
  stub.close = () =>
    new Promise<void>((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    });
  return stub as OpenAiStub;
}

/** Splits a reply into small deltas the way a model streams tokens. */
export function toDeltas(reply: string, size = 7): string[] {
  const deltas: string[] = [];
  for (let i = 0; i < reply.length; i += size) deltas.push(reply.slice(i, i + size));
  return deltas;
}
