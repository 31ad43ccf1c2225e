import { strict as assert } from 'node:assert';
import { streamChatCompletion } from '../../src/openai/client';
import { apiBaseUrl } from '../../src/openai/endpointUrl';
import { failureOf } from '../support/chat-failure';
import { startOpenAiStub, toDeltas, type OpenAiStub } from '../support/openai-stub-server';

const REPLY = 'Here you go:\n```html\n<p>Hello</p>\n```\n';

describe('streamChatCompletion', () => {
  let stub: OpenAiStub;
  beforeEach(async () => {
    stub = await startOpenAiStub({ deltas: toDeltas(REPLY), apiKey: 'sk-test', models: ['qwen'] });
  });
  afterEach(() => stub.close());

  const run = (
    overrides: {
      apiKey?: string;
      model?: string;
      signal?: AbortSignal;
      local?: boolean;
      endpoint?: string;
    } = {},
    deltas: string[] = [],
  ) =>
    streamChatCompletion({
      endpoint: overrides.endpoint ?? stub.url,
      apiKey: 'apiKey' in overrides ? overrides.apiKey : 'sk-test',
      request: {
        model: overrides.model ?? 'qwen',
        messages: [{ role: 'user', content: 'hi' }],
        max_tokens: 50,
      },
      signal: overrides.signal,
      local: overrides.local ?? false,
      onDelta: (delta) => deltas.push(delta),
    });

  it('streams the deltas in order and reports the usage tokens', async () => {
    const deltas: string[] = [];
    const stats = await run({}, deltas);
    assert.equal(stats.text, REPLY);
    assert.equal(deltas.join(''), REPLY);
    assert.equal(stats.tokens, toDeltas(REPLY).length);
    assert.equal(stats.finishReason, 'stop');
    const sent = stub.requests[0]!;
    assert.equal(sent.headers.authorization, 'Bearer sk-test');
    assert.equal((sent.body as { stream: boolean }).stream, true);
    assert.equal((sent.body as { max_tokens: number }).max_tokens, 50);
  });

  it('accepts an endpoint without /v1', async () => {
    const stats = await run({ endpoint: stub.url.replace(/\/v1$/, '/') });
    assert.equal(stats.text, REPLY);
  });

  it('accepts the full chat completions URL pasted as the endpoint', async () => {
    assert.equal((await run({ endpoint: `${stub.url}/chat/completions/` })).text, REPLY);
    assert.equal(stub.requests[0]!.path, '/v1/chat/completions');
  });

  it('maps a missing or wrong key to "set the API key"', async () => {
    const failure = await failureOf(run({ apiKey: undefined }));
    assert.equal(failure.kind, 'unauthorized');
    assert.deepEqual(failure.actions, ['setApiKey', 'openSettings']);
    assert.match(failure.message, /needs an API key \(HTTP 401\), and none is set for it/);
    const wrong = await failureOf(run({ apiKey: 'sk-wrong' }));
    assert.match(wrong.message, /rejected the API key \(HTTP 401\).*Incorrect API key/);
    assert.deepEqual(wrong.actions, ['setApiKey', 'openSettings']);
  });

  it('maps an unknown model to "choose a model"', async () => {
    const failure = await failureOf(run({ model: 'nope' }));
    assert.equal(failure.kind, 'modelNotFound');
    assert.match(failure.message, /does not serve the model "nope"/);
    assert.deepEqual(failure.actions, ['chooseModel', 'openSettings']);
  });

  for (const [status, kind, pattern] of [
    [413, 'tooLarge', /too large/],
    [429, 'rateLimited', /rate limiting/],
    [503, 'loading', /still loading the model/],
    [500, 'serverError', /failed while generating \(HTTP 500\)/],
  ] as const) {
    it(`maps HTTP ${status} to ${kind}`, async () => {
      stub.behaviour.status = status;
      const failure = await failureOf(run({ local: true }));
      assert.equal(failure.kind, kind);
      assert.equal(failure.status, status);
      assert.match(failure.message, pattern);
      assert.match(failure.message, /the local model server/i);
    });
  }

  it('maps a refused connection to "start the server" for the local backend', async () => {
    const url = stub.url;
    await stub.close();
    const local = await failureOf(run({ local: true, endpoint: url }));
    assert.equal(local.kind, 'unreachable');
    assert.deepEqual(local.actions, ['startServer', 'showLog']);
    assert.match(local.message, /ECONNREFUSED/);
    const remote = await failureOf(run({ endpoint: url }));
    assert.deepEqual(remote.actions, ['openSettings']);
    assert.match(remote.message, /Cannot reach http:\/\/127\.0\.0\.1/);
    stub = await startOpenAiStub({ deltas: [] }); // for afterEach
  });

  it('reports a stream that is not JSON, and one that ends without [DONE]', async () => {
    stub.behaviour.rawBody = 'data: {not json}\n\n';
    assert.equal((await failureOf(run())).kind, 'malformedStream');
    stub.behaviour.rawBody = undefined;
    stub.behaviour.dropAfter = 2;
    const dropped = await failureOf(run());
    assert.ok(['malformedStream', 'unreachable'].includes(dropped.kind), dropped.kind);
  });

  it('sends max_completion_tokens instead when the endpoint refuses max_tokens (OpenAI)', async () => {
    stub.behaviour.refuses = {
      max_tokens:
        "Unsupported parameter: 'max_tokens' is not supported with this model. Use 'max_completion_tokens' instead.",
    };
    const stats = await run();
    assert.equal(stats.text, REPLY);
    assert.equal(stub.requests.length, 2);
    const retried = stub.requests[1]!.body as Record<string, unknown>;
    assert.equal(retried.max_completion_tokens, 50);
    assert.ok(!('max_tokens' in retried));
  });

  it('drops stream_options when the endpoint refuses it, and still fails on other 400s', async () => {
    stub.behaviour.refuses = { stream_options: 'Unrecognized request argument: stream_options' };
    assert.equal((await run()).text, REPLY);
    assert.ok(!('stream_options' in (stub.requests[1]!.body as object)));
    stub.behaviour.refuses = {
      max_tokens:
        "'max_tokens' or 'max_completion_tokens' is too large: 50. This model's maximum context length is 40 tokens.",
    };
    const tooLarge = await failureOf(run());
    assert.equal(tooLarge.kind, 'badRequest');
    assert.match(tooLarge.message, /too large/);
    assert.equal(stub.requests.length, 3, 'a limit that is too large is not retried');
    stub.behaviour.refuses = { messages: 'messages: too many images' };
    const failure = await failureOf(run());
    assert.equal(failure.kind, 'badRequest');
    assert.match(failure.message, /too many images/);
  });

  it("says when the endpoint's model does not take images, and offers to choose another", async () => {
    const refusals = [
      'image input is not supported - hint: if this is unexpected, you may need to provide the mmproj',
      'Qwen2.5-7B-Instruct is not a multimodal model',
      'At most 0 image(s) may be provided in one request.',
      'Model does not support images. Please use a model that does.',
    ];
    for (const refusal of refusals) {
      stub.behaviour.refuses = { messages: refusal };
      const failure = await failureOf(run());
      assert.match(failure.message, /The model "qwen" at .* does not take images \(HTTP 400\)/);
      assert.deepEqual(failure.actions, ['chooseModel', 'openSettings'], refusal);
    }
  });

  it('ignores events without choices (Azure prompt filter results, usage with null)', async () => {
    stub.behaviour.preamble = [
      { id: '', object: '', choices: [], prompt_filter_results: [{ prompt_index: 0 }] },
      { id: 'c', object: 'chat.completion.chunk', choices: [], usage: null },
    ];
    assert.equal((await run()).text, REPLY);
  });

  it("reports the local server's prompt progress comments, and skips any other comment", async () => {
    stub.behaviour.comments = [
      'keep-alive',
      'progress {"stage":"image","done":1,"total":8}',
      'progress {"stage":"image","done":8,"total":8}',
      'progress {"stage":"prompt","done":256,"total":1024}',
      'progress {"stage":"sideways","done":1,"total":2}',
      'progress {"stage":"prompt","done":1}',
      'progress not json',
    ];
    const seen: unknown[] = [];
    const stats = await streamChatCompletion({
      endpoint: stub.url,
      apiKey: 'sk-test',
      request: { model: 'qwen', messages: [{ role: 'user', content: 'hi' }] },
      local: true,
      onDelta: () => undefined,
      onPromptProgress: (progress) => seen.push(progress),
    });
    assert.equal(stats.text, REPLY);
    assert.deepEqual(seen, [
      { stage: 'image', done: 1, total: 8 },
      { stage: 'image', done: 8, total: 8 },
      { stage: 'prompt', done: 256, total: 1024 },
    ]);
  });

  it('reports a reply cut off by the token limit', async () => {
    stub.behaviour.finishReason = 'length';
    const stats = await run();
    assert.equal(stats.finishReason, 'length');
  });

  it('stops when the signal aborts, and the server sees the client leave', async () => {
    stub.behaviour.deltas = toDeltas('x'.repeat(400), 1);
    stub.behaviour.delayMs = 5;
    const controller = new AbortController();
    const deltas: string[] = [];
    const pending = streamChatCompletion({
      endpoint: stub.url,
      apiKey: 'sk-test',
      request: { model: 'qwen', messages: [] },
      signal: controller.signal,
      local: false,
      onDelta: (delta) => {
        deltas.push(delta);
        if (deltas.length === 5) controller.abort();
      },
    });
    const failure = await failureOf(pending);
    assert.equal(failure.kind, 'aborted');
    assert.equal(deltas.length, 5);
    await stub.clientClosedEarly;
  });
});

describe('streamChatCompletion on a server that hangs mid-reply', () => {
  let stub: OpenAiStub;
  beforeEach(async () => {
    stub = await startOpenAiStub({ deltas: toDeltas(REPLY, 3), stallAfter: 4 });
  });
  afterEach(() => stub.close());

  it('gives up after the silence limit, keeps what came, and closes the connection', async () => {
    const deltas: string[] = [];
    const started = Date.now();
    const failure = await failureOf(
      streamChatCompletion({
        endpoint: stub.url,
        request: { model: 'qwen', messages: [] },
        local: false,
        stallMs: 300,
        onDelta: (delta) => deltas.push(delta),
      }),
    );
    assert.equal(failure.kind, 'stalled');
    assert.match(failure.message, /stopped sending for 0 s in the middle of the reply/);
    assert.deepEqual(failure.actions, ['openSettings']);
    assert.equal(deltas.join(''), REPLY.slice(0, 12));
    assert.ok(Date.now() - started >= 300);
    await stub.clientClosedEarly;
  });

  it('waits longer than the limit for the first token (a model loading, a large image)', async () => {
    stub.behaviour.stallAfter = undefined;
    stub.behaviour.startDelayMs = 500;
    const deltas: string[] = [];
    const stats = await streamChatCompletion({
      endpoint: stub.url,
      request: { model: 'qwen', messages: [] },
      local: true,
      stallMs: 200,
      onDelta: (delta) => deltas.push(delta),
    });
    assert.equal(stats.text, REPLY);
    assert.equal(deltas.join(''), REPLY);
  });
});

describe('apiBaseUrl', () => {
  it('adds /v1 to a bare host and keeps any path a provider documents', () => {
    assert.equal(apiBaseUrl('http://127.0.0.1:11434'), 'http://127.0.0.1:11434/v1');
    assert.equal(apiBaseUrl('http://127.0.0.1:11434/'), 'http://127.0.0.1:11434/v1');
    assert.equal(apiBaseUrl('http://localhost:1234/v1/'), 'http://localhost:1234/v1');
    assert.equal(apiBaseUrl('https://openrouter.ai/api/v1'), 'https://openrouter.ai/api/v1');
    assert.equal(
      apiBaseUrl('https://generativelanguage.googleapis.com/v1beta/openai/'),
      'https://generativelanguage.googleapis.com/v1beta/openai',
    );
  });

  it('cuts a pasted /chat/completions or /models back to the base', () => {
    assert.equal(apiBaseUrl('http://gpu-box:8000/v1/chat/completions'), 'http://gpu-box:8000/v1');
    assert.equal(apiBaseUrl('http://gpu-box:8000/v1/models'), 'http://gpu-box:8000/v1');
  });
});
