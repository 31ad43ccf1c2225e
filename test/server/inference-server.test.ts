/**
 * The inference server over real loopback HTTP with the real engine on the tiny golden model:
 * output equality, streaming, cancellation, ordering, and every refusal with its status.
 */
import { strict as assert } from 'node:assert';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import type { Engine } from '../../server/engine/contracts';
import { loadEngine } from '../../server/engine/engine';
import { InferenceServer, type ServerLimits } from '../../server/http/inference-server';
import { pngChunk } from '../support/png';
import { callJson, rawRequest, streamChat, type ServerHandle } from './support/chat-client';
import {
  dataUrl,
  goldenCases,
  goldenMessages,
  imageBytes,
  openAiMessages,
  TINY_MODEL_DIR,
} from './support/tiny-model';

const CHATS = goldenCases();
const TEXT_ONLY = CHATS.find((chat) => chat.name === 'text_only')!;
/** Greedy decoding of the text-only chat repeats one word without end: long runs for tests. */
const LONG_RUN = { messages: openAiMessages(TEXT_ONLY), temperature: 0, max_tokens: 3000 };

interface Started {
  server: InferenceServer;
  handle: ServerHandle;
  logs: string[];
}

async function startServer(
  engine: Engine | Promise<Engine>,
  limits: Partial<ServerLimits> = {},
): Promise<Started> {
  const logs: string[] = [];
  const token = `test-${Math.random().toString(36).slice(2)}`;
  const server = new InferenceServer({
    engine,
    modelName: 'tiny-qwen3-vl',
    token,
    limits,
    log: (line) => logs.push(line),
  });
  const address = await server.listen(0, '127.0.0.1');
  return { server, logs, handle: { url: `http://127.0.0.1:${address.port}`, token } };
}

/** A PNG whose header claims width x height, with a valid IHDR checksum and no real pixels. */
function pngClaiming(width: number, height: number): Buffer {
  const header = Buffer.alloc(13);
  header.writeUInt32BE(width, 0);
  header.writeUInt32BE(height, 4);
  header.set([8, 2, 0, 0, 0], 8); // 8-bit RGB, no interlace
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    pngChunk('IHDR', header),
    pngChunk('IDAT', Buffer.from([0x78, 0x9c, 0x03, 0x00, 0x00, 0x00, 0x00, 0x01])),
    pngChunk('IEND', Buffer.alloc(0)),
  ]);
}

function imageMessage(url: string) {
  return [
    {
      role: 'user',
      content: [
        { type: 'image_url', image_url: { url } },
        { type: 'text', text: 'Describe this.' },
      ],
    },
  ];
}

function metricValue(metrics: string, name: string): number {
  const line = metrics.split('\n').find((candidate) => candidate.startsWith(`${name} `));
  return line ? Number(line.split(' ')[1]) : 0;
}

/** Prompt tokens the server kept in its KV cache from the request before, from /metrics. */
async function reusedTokens(handle: Started['handle']): Promise<number> {
  return metricValue((await callJson(handle, '/metrics')).body, 'd2c_prompt_tokens_reused_total');
}

/** Completion tokens the server has produced so far, from /metrics. */
async function completionTokens(handle: Started['handle']): Promise<number> {
  return metricValue((await callJson(handle, '/metrics')).body, 'd2c_completion_tokens_total');
}

/**
 * After a client abandoned a LONG_RUN: a short generation answers in full, and the abandoned
 * one stopped (had it run on, it would have produced 3000 tokens before this one began).
 */
async function assertAbandonedRunStopped(
  handle: Started['handle'],
  tokensBefore: number,
): Promise<void> {
  const next = await callJson(handle, '/v1/chat/completions', { ...LONG_RUN, max_tokens: 24 });
  assert.equal(next.status, 200);
  assert.equal(next.body.choices[0].message.content, TEXT_ONLY.greedy_text);
  const after = await completionTokens(handle);
  assert.ok(
    after - tokensBefore < 24 + 300,
    `the abandoned generation stopped (${after - tokensBefore} tokens in all)`,
  );
}

describe('inference server with the tiny model over loopback HTTP', function () {
  this.timeout(120_000);
  let onnxCache: string;
  let engine: Engine;
  let main: Started;

  before(async () => {
    onnxCache = await mkdtemp(join(tmpdir(), 'd2c-server-onnx-'));
    engine = await loadEngine({
      modelDir: TINY_MODEL_DIR,
      cacheDir: onnxCache,
      device: 'cpu',
      precision: 'fp32',
    });
    main = await startServer(engine);
  });
  after(async () => {
    await main?.server.close();
    await engine?.dispose();
    await rm(onnxCache, { recursive: true, force: true });
  });

  it('reports health, the served model and metrics', async () => {
    const health = await callJson(main.handle, '/health');
    assert.equal(health.status, 200);
    assert.deepEqual(health.body, { status: 'ready', device: 'cpu', model: 'model', queue: 0 });
    const models = await callJson(main.handle, '/v1/models');
    assert.deepEqual(
      models.body.data.map((model: { id: string }) => model.id),
      ['model'],
    );
    const metrics = await callJson(main.handle, '/metrics');
    assert.equal(metrics.status, 200);
    assert.match(metrics.headers.get('content-type') ?? '', /^text\/plain/);
    for (const name of [
      'd2c_http_requests_total',
      'd2c_prompt_tokens_total',
      'd2c_prompt_tokens_reused_total',
      'd2c_completion_tokens_total',
      'd2c_time_to_first_token_seconds',
      'd2c_decode_tokens_per_second',
      'd2c_queue_length',
    ]) {
      assert.match(metrics.body, new RegExp(`# TYPE ${name} `), name);
    }
  });

  for (const chat of CHATS) {
    it(`${chat.name}: greedy output is the reference's and the engine's own, streamed or not`, async () => {
      const request = { messages: openAiMessages(chat), temperature: 0, max_tokens: 24 };
      const whole = await callJson(main.handle, '/v1/chat/completions', request);
      assert.equal(whole.status, 200, JSON.stringify(whole.body));
      assert.equal(whole.body.object, 'chat.completion');
      const choice = whole.body.choices[0];
      assert.equal(choice.message.role, 'assistant');
      assert.equal(choice.message.content, chat.greedy_text);
      assert.equal(choice.finish_reason, 'length');

      const direct = await engine.generate({
        messages: goldenMessages(chat),
        maxNewTokens: 24,
        sampling: { greedy: true },
      });
      assert.equal(choice.message.content, direct.text);
      assert.deepEqual(whole.body.usage, {
        prompt_tokens: direct.promptTokenIds.length,
        completion_tokens: direct.tokenIds.length,
        total_tokens: direct.promptTokenIds.length + direct.tokenIds.length,
      });

      const streamed = await streamChat(main.handle, request);
      assert.equal(streamed.status, 200);
      assert.equal(streamed.text, chat.greedy_text);
      assert.equal(streamed.events.at(-1), '[DONE]');
      const final = streamed.events.at(-2);
      assert.equal(final.object, 'chat.completion.chunk');
      assert.equal(final.choices[0].finish_reason, 'length');
      assert.deepEqual(final.usage, whole.body.usage);
      assert.equal(streamed.events[0].choices[0].delta.role, 'assistant');
      const ids = new Set(streamed.events.slice(0, -1).map((event) => event.id));
      assert.equal(ids.size, 1, 'every chunk carries the same completion id');
    });
  }

  it('streams how far the prompt has been read as comments: the vision tower by stage, then the prompt', async () => {
    // An image this server has not seen (a seen one skips the tower).
    const png = await sharp({
      create: { width: 96, height: 64, channels: 3, background: { r: 40, g: 120, b: 200 } },
    })
      .png()
      .toBuffer();
    const streamed = await streamChat(main.handle, {
      messages: [
        {
          role: 'user',
          content: [
            {
              type: 'image_url',
              image_url: { url: `data:image/png;base64,${png.toString('base64')}` },
            },
            { type: 'text', text: 'Generate the HTML for this UI.' },
          ],
        },
      ],
      temperature: 0,
      max_tokens: 1,
    });
    assert.equal(streamed.status, 200);
    const progress = streamed.comments
      .filter((comment) => comment.startsWith('progress '))
      .map((comment) => JSON.parse(comment.slice('progress '.length)));
    const image = progress.filter((p) => p.stage === 'image');
    const prompt = progress.filter((p) => p.stage === 'prompt');
    // The tiny CPU build's tower: a stage per block.
    assert.deepEqual(
      image.map((p) => [p.done, p.total]),
      [
        [1, 4],
        [2, 4],
        [3, 4],
        [4, 4],
      ],
    );
    assert.ok(prompt.length > 0, 'the prompt');
    const last = prompt.at(-1);
    assert.equal(last.done, last.total);
    assert.equal(progress.length, image.length + prompt.length, 'nothing else');
    // Every progress comment comes before the first token.
    assert.equal(streamed.events[0].choices[0].delta.role, 'assistant');
  });

  it('max_tokens 0 reads the prompt ahead: an empty answer, then the request itself as before', async () => {
    const ahead = await callJson(main.handle, '/v1/chat/completions', {
      ...LONG_RUN,
      max_tokens: 0,
    });
    assert.equal(ahead.status, 200);
    assert.equal(ahead.body.choices[0].message.content, '');
    assert.equal(ahead.body.choices[0].finish_reason, 'length');
    assert.equal(ahead.body.usage.completion_tokens, 0);
    const reusedBefore = await reusedTokens(main.handle);
    const answer = await callJson(main.handle, '/v1/chat/completions', {
      ...LONG_RUN,
      max_tokens: 24,
    });
    assert.equal(answer.body.choices[0].message.content, TEXT_ONLY.greedy_text);
    // All of the prompt but its last token was read ahead.
    assert.equal(
      (await reusedTokens(main.handle)) - reusedBefore,
      answer.body.usage.prompt_tokens - 1,
    );
  });

  it('ends the text before a stop string, with finish_reason "stop"', async () => {
    const reply = await callJson(main.handle, '/v1/chat/completions', {
      ...LONG_RUN,
      max_tokens: 24,
      stop: ['cing en'],
    });
    assert.equal(reply.status, 200);
    assert.equal(reply.body.choices[0].message.content, TEXT_ONLY.greedy_text.split('cing en')[0]);
    assert.equal(reply.body.choices[0].finish_reason, 'stop');
  });

  it('a client that disconnects mid-stream frees the engine for the next request', async () => {
    const before = await completionTokens(main.handle);
    let contentChunks = 0;
    const first = await streamChat(main.handle, LONG_RUN, (event) => {
      if (event?.choices?.[0]?.delta?.content) contentChunks++;
      return contentChunks >= 3 ? 'abort' : undefined;
    });
    assert.ok(first.aborted);
    assert.ok(
      !first.events.some((event) => event?.choices?.[0]?.finish_reason),
      'the generation was still running when the client left',
    );

    await assertAbandonedRunStopped(main.handle, before);
    assert.ok(main.logs.some((line) => line.startsWith('generation cancelled')));
    assert.equal((await callJson(main.handle, '/health')).body.status, 'ready');
  });

  it('a client that gives up on a non-streaming request cancels its generation too', async () => {
    const before = await completionTokens(main.handle);
    const controller = new AbortController();
    const pending = fetch(`${main.handle.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${main.handle.token}` },
      body: JSON.stringify(LONG_RUN),
      signal: controller.signal,
    }).catch((error: Error) => error);
    while ((await callJson(main.handle, '/health')).body.status !== 'busy') {
      await new Promise((resolve) => setImmediate(resolve));
    }
    controller.abort();
    assert.equal(((await pending) as Error).name, 'AbortError');
    await assertAbandonedRunStopped(main.handle, before);
  });

  it('serves two clients one after the other, in arrival order', async () => {
    const timeline: string[] = [];
    let firstStarted!: () => void;
    const started = new Promise<void>((resolve) => (firstStarted = resolve));
    type Event = { choices?: { delta?: { role?: string; content?: string } }[] } | '[DONE]';
    const record = (who: string) => (event: Event) => {
      if (event === '[DONE]') timeline.push(`${who} done`);
      else if (event.choices?.[0]?.delta?.role) firstStarted();
      else if (event.choices?.[0]?.delta?.content) timeline.push(`${who} token`);
    };
    const request = { ...LONG_RUN, max_tokens: 60 };
    const a = streamChat(main.handle, request, record('a'));
    await started;
    const b = streamChat(main.handle, request, record('b'));
    const [resultA, resultB] = await Promise.all([a, b]);
    assert.equal(resultA.text, resultB.text);
    assert.ok(timeline.includes('b token'));
    assert.ok(
      timeline.indexOf('a done') < timeline.indexOf('b token'),
      'the second client gets its first token after the first client is done',
    );
  });

  it('a queued request whose image the engine rejects gets its 400, and the queue moves on', async () => {
    let firstStarted!: () => void;
    const started = new Promise<void>((resolve) => (firstStarted = resolve));
    const a = streamChat(main.handle, { ...LONG_RUN, max_tokens: 60 }, (event) => {
      if (event !== '[DONE]' && event.choices?.[0]?.delta?.role) firstStarted();
    });
    await started;
    const corrupt = Buffer.concat([
      imageBytes('small_40x30.png').subarray(0, 40),
      Buffer.from('garbage'),
    ]);
    // Queued behind a: its image is only decoded when its turn comes.
    const b = streamChat(main.handle, { messages: imageMessage(dataUrl(corrupt)) });
    const c = callJson(main.handle, '/v1/chat/completions', { ...LONG_RUN, max_tokens: 24 });
    const [resultA, resultB, resultC] = await Promise.all([a, b, c]);
    assert.equal(resultA.status, 200);
    assert.equal(resultB.status, 400);
    assert.equal(resultB.events[0].error.code, 'invalid_image');
    assert.equal(resultC.status, 200);
    assert.equal(resultC.body.choices[0].message.content, TEXT_ONLY.greedy_text);
    const health = await callJson(main.handle, '/health');
    assert.equal(health.body.status, 'ready');
  });

  describe('refuses bad requests with their status and a message that says what to fix', () => {
    const chat = (body: unknown, init = {}) =>
      callJson(main.handle, '/v1/chat/completions', body, init);
    const expectError = (
      reply: { status: number; body: any },
      status: number,
      code: string,
      message: RegExp,
    ) => {
      assert.equal(reply.status, status, JSON.stringify(reply.body));
      assert.equal(reply.body.error.code, code);
      assert.match(reply.body.error.message, message);
      assert.ok('type' in reply.body.error && 'param' in reply.body.error);
    };

    it('a corrupt PNG: 400', async () => {
      const corrupt = Buffer.concat([
        imageBytes('small_40x30.png').subarray(0, 40),
        Buffer.from('garbage'),
      ]);
      expectError(
        await chat({ messages: imageMessage(dataUrl(corrupt)) }),
        400,
        'invalid_image',
        /image/i,
      );
    });

    it('a refusal of a streaming request is a plain JSON error, not an event stream', async () => {
      const corrupt = Buffer.concat([
        imageBytes('small_40x30.png').subarray(0, 40),
        Buffer.from('garbage'),
      ]);
      const reply = await streamChat(main.handle, { messages: imageMessage(dataUrl(corrupt)) });
      assert.equal(reply.status, 400);
      assert.equal(reply.events[0].error.code, 'invalid_image');
    });

    it('a PNG header claiming 30000x30000 pixels: 413 before any decoding', async () => {
      const bomb = dataUrl(pngClaiming(30000, 30000));
      expectError(
        await chat({ messages: imageMessage(bomb) }),
        413,
        'image_too_large',
        /30000|pixels/,
      );
    });

    it('an unsupported image type: 400', async () => {
      const bmp = `data:image/bmp;base64,${Buffer.from('BM').toString('base64')}`;
      expectError(
        await chat({ messages: imageMessage(bmp) }),
        400,
        'unsupported_image_type',
        /image\/bmp/,
      );
    });

    it('a request body that is not JSON: 415 by type, 400 by content', async () => {
      expectError(
        await chat(undefined, { rawBody: 'hello', headers: { 'content-type': 'text/plain' } }),
        415,
        'unsupported_media_type',
        /application\/json/,
      );
      expectError(
        await chat(undefined, {
          rawBody: '{"messages": [',
          headers: { 'content-type': 'application/json' },
        }),
        400,
        'invalid_json',
        /not valid JSON/,
      );
    });

    it('an empty message list: 400', async () => {
      expectError(await chat({ messages: [] }), 400, 'invalid_value', /empty/);
    });

    it('a 50 MB body: 413', async () => {
      const body = Buffer.alloc(50 * 1024 * 1024, 0x20);
      const reply = await rawRequest(`${main.handle.url}/v1/chat/completions`, {
        method: 'POST',
        headers: {
          authorization: `Bearer ${main.handle.token}`,
          'content-type': 'application/json',
          'content-length': String(body.length),
        },
        body,
      });
      assert.equal(reply.status, 413);
      assert.match(JSON.parse(reply.body).error.message, /larger than the limit/);
    });

    it('a prompt longer than the context: 400 with the numbers', async () => {
      const long = 'lorem ipsum '.repeat(3000);
      const reply = await chat({ messages: [{ role: 'user', content: long }] });
      expectError(reply, 400, 'context_length_exceeded', /4096/);
      const tooMany = await chat({ messages: [{ role: 'user', content: 'hi' }], max_tokens: 5000 });
      expectError(tooMany, 400, 'context_length_exceeded', /5000.*4096|4096.*5000/);
    });

    it('no token or a wrong one: 401', async () => {
      const none = await chat({ messages: [{ role: 'user', content: 'hi' }] }, { token: null });
      expectError(none, 401, 'missing_token', /Bearer/);
      assert.equal(none.headers.get('www-authenticate'), 'Bearer');
      expectError(
        await callJson(main.handle, '/health', undefined, { token: 'wrong' }),
        401,
        'invalid_token',
        /Invalid/,
      );
      expectError(
        await callJson(main.handle, '/metrics', undefined, { token: null }),
        401,
        'missing_token',
        /Bearer/,
      );
    });

    it('a foreign Host header (DNS rebinding): 403', async () => {
      const reply = await rawRequest(`${main.handle.url}/health`, {
        headers: { host: 'attacker.example', authorization: `Bearer ${main.handle.token}` },
      });
      assert.equal(reply.status, 403);
      assert.match(JSON.parse(reply.body).error.message, /attacker\.example/);
    });

    it('an unknown route: 404; a wrong method: 405', async () => {
      expectError(
        await callJson(main.handle, '/v1/completions', { prompt: 'x' }),
        404,
        'not_found',
        /No route/,
      );
      expectError(
        await callJson(main.handle, '/v1/chat/completions'),
        405,
        'method_not_allowed',
        /POST/,
      );
    });
  });

  it('answers 503 while the model loads, then serves', async () => {
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    const loading = gate.then(() =>
      loadEngine({
        modelDir: TINY_MODEL_DIR,
        cacheDir: onnxCache,
        device: 'cpu',
        precision: 'fp32',
      }),
    );
    const { server, handle } = await startServer(loading);
    try {
      const health = await callJson(handle, '/health');
      assert.deepEqual(health.body, {
        status: 'loading',
        device: null,
        model: 'tiny-qwen3-vl',
        queue: 0,
      });
      const early = await callJson(handle, '/v1/chat/completions', {
        messages: [{ role: 'user', content: 'hi' }],
      });
      assert.equal(early.status, 503);
      assert.equal(early.body.error.code, 'model_loading');
      assert.equal(early.headers.get('retry-after'), '1');
      release();
      await server.whenLoaded();
      assert.equal((await callJson(handle, '/health')).body.status, 'ready');
      const later = await callJson(handle, '/v1/chat/completions', { ...LONG_RUN, max_tokens: 4 });
      assert.equal(later.status, 200);
    } finally {
      await server.close();
      await (await loading).dispose();
    }
  });

  it('answers 429 when the queue is full', async () => {
    const { server, handle } = await startServer(engine, { maxQueue: 0 });
    try {
      let leave = false;
      let running!: () => void;
      const started = new Promise<void>((resolve) => (running = resolve));
      const long = streamChat(handle, LONG_RUN, (event) => {
        if (event?.choices?.[0]?.delta?.content) running();
        return leave ? 'abort' : undefined;
      });
      await started;
      assert.equal((await callJson(handle, '/health')).body.status, 'busy');
      const refused = await callJson(handle, '/v1/chat/completions', {
        messages: [{ role: 'user', content: 'hi' }],
      });
      leave = true;
      assert.equal(refused.status, 429);
      assert.equal(refused.body.error.code, 'queue_full');
      assert.ok((await long).aborted);
    } finally {
      await server.close();
    }
  });

  it('stops a request that runs past its timeout: 504, and the engine is free again', async () => {
    const { server, handle } = await startServer(engine, { requestTimeoutMs: 300 });
    try {
      const reply = await callJson(handle, '/v1/chat/completions', LONG_RUN);
      assert.equal(reply.status, 504);
      assert.equal(reply.body.error.code, 'request_timeout');
      const next = await callJson(handle, '/v1/chat/completions', { ...LONG_RUN, max_tokens: 4 });
      assert.equal(next.status, 200);
    } finally {
      await server.close();
    }
  });

  it('ends running streams with an error event when the server shuts down', async () => {
    const { server, handle } = await startServer(engine);
    let closing: Promise<void> | undefined;
    const stream = await streamChat(handle, LONG_RUN, (event) => {
      if (event?.choices?.[0]?.delta?.content && !closing) closing = server.close();
    });
    await closing;
    const last = stream.events.filter((event) => event !== '[DONE]').at(-1);
    assert.equal(last.error.code, 'shutting_down');
    assert.equal(stream.events.at(-1), '[DONE]');
  });

  it('answers an internal failure with 500 and a reference that is in the log', async () => {
    const broken = await loadEngine({
      modelDir: TINY_MODEL_DIR,
      cacheDir: onnxCache,
      device: 'cpu',
      precision: 'fp32',
    });
    await broken.dispose(); // its sessions are gone: generating must fail inside the engine
    const { server, handle, logs } = await startServer(broken);
    try {
      const reply = await callJson(handle, '/v1/chat/completions', { ...LONG_RUN, max_tokens: 4 });
      assert.equal(reply.status, 500, JSON.stringify(reply.body));
      const reference = reply.body.error.message.match(/log reference (\w+)/)?.[1];
      assert.ok(reference, reply.body.error.message);
      assert.ok(
        logs.some((line) => line.includes(`error ${reference}`)),
        logs.join('\n'),
      );

      // Once the stream has begun, the same failure arrives as the last event before [DONE].
      const streamed = await streamChat(handle, { ...LONG_RUN, max_tokens: 4 });
      assert.equal(streamed.events.at(-1), '[DONE]');
      const failure = streamed.events.at(-2);
      assert.equal(failure.error.code, 'internal_error');
      const streamedReference = failure.error.message.match(/log reference (\w+)/)?.[1];
      assert.ok(logs.some((line) => line.includes(`error ${streamedReference}`)));
    } finally {
      await server.close();
    }
  });
});
