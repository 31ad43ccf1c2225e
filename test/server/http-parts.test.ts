/** The HTTP layer's pure parts: request validation, host and token checks, the queue, errors. */
import { strict as assert } from 'node:assert';
import { ApiError, toApiError } from '../../server/http/api-error';
import { parseChatRequest } from '../../server/http/chat-request';
import { GenerationQueue } from '../../server/http/generation-queue';
import { checkBearer, checkHost, hostName } from '../../server/http/request-guard';
import { EngineError } from '../../server/engine/errors';
import { throttleProgress } from '../../server/hub/progress-throttle';
import type { DownloadProgress } from '../../server/hub/pull-model';

const LIMITS = { maxImageBytes: 1000, maxImages: 2 };
const PNG_URL = `data:image/png;base64,${Buffer.from('png bytes').toString('base64')}`;

function apiErrorOf(run: () => unknown): ApiError {
  try {
    run();
  } catch (error) {
    assert.ok(error instanceof ApiError, String(error));
    return error;
  }
  assert.fail('expected an ApiError');
}

describe('chat request validation', () => {
  it('turns text and image parts into engine messages with sampling settings', () => {
    const parsed = parseChatRequest(
      {
        model: 'anything',
        stream: true,
        max_tokens: 64,
        temperature: 0.5,
        top_p: 0.9,
        top_k: 20,
        seed: 7,
        stop: '</html>',
        messages: [
          { role: 'system', content: 'Be brief.' },
          {
            role: 'user',
            content: [
              { type: 'text', text: 'Describe' },
              { type: 'image_url', image_url: { url: PNG_URL } },
            ],
          },
        ],
      },
      LIMITS,
    );
    assert.equal(parsed.stream, true);
    assert.equal(parsed.model, 'anything');
    assert.deepEqual(parsed.generate.sampling, { temperature: 0.5, topP: 0.9, topK: 20, seed: 7 });
    assert.equal(parsed.generate.maxNewTokens, 64);
    assert.deepEqual(parsed.generate.stop, ['</html>']);
    const [system, user] = parsed.generate.messages;
    assert.deepEqual(system, { role: 'system', content: 'Be brief.' });
    assert.ok(Array.isArray(user.content));
    const image = user.content[1];
    assert.equal(image.type, 'image');
    assert.equal(Buffer.from(image.type === 'image' ? image.image : []).toString(), 'png bytes');
  });

  it('maps temperature 0 to greedy decoding', () => {
    const parsed = parseChatRequest(
      { messages: [{ role: 'user', content: 'hi' }], temperature: 0 },
      LIMITS,
    );
    assert.deepEqual(parsed.generate.sampling, { greedy: true });
    assert.equal(parsed.stream, false);
  });

  it('top_k -1 or 0 turns top-k off instead of keeping the checkpoint default (20)', () => {
    for (const topK of [-1, 0]) {
      const parsed = parseChatRequest(
        { messages: [{ role: 'user', content: 'hi' }], temperature: 0.7, top_k: topK },
        LIMITS,
      );
      assert.deepEqual(parsed.generate.sampling, { temperature: 0.7, topK: 0 });
    }
  });

  const refusals: [string, unknown, number, RegExp][] = [
    ['a body that is not an object', [1, 2], 400, /JSON object/],
    ['no messages', { messages: [] }, 400, /"messages" is empty/],
    ['messages that are not a list', { messages: 'hi' }, 400, /must be a list/],
    ['an unknown role', { messages: [{ role: 'tool', content: 'x' }] }, 400, /role must be/],
    [
      'an unsupported image type',
      {
        messages: [
          {
            role: 'user',
            content: [{ type: 'image_url', image_url: { url: 'data:image/bmp;base64,AAAA' } }],
          },
        ],
      },
      400,
      /unsupported image type "image\/bmp"/,
    ],
    [
      'a remote image URL',
      {
        messages: [
          {
            role: 'user',
            content: [{ type: 'image_url', image_url: { url: 'https://example.com/a.png' } }],
          },
        ],
      },
      400,
      /only inline data: URLs/,
    ],
    [
      'an image over the byte limit',
      {
        messages: [
          {
            role: 'user',
            content: [
              {
                type: 'image_url',
                image_url: { url: `data:image/png;base64,${'A'.repeat(2000)}` },
              },
            ],
          },
        ],
      },
      413,
      /limit is 1000 bytes/,
    ],
    [
      'broken base64',
      {
        messages: [
          {
            role: 'user',
            content: [{ type: 'image_url', image_url: { url: 'data:image/png;base64,@@@' } }],
          },
        ],
      },
      400,
      /not valid base64/,
    ],
    [
      'too many images',
      {
        messages: [
          {
            role: 'user',
            content: [1, 2, 3].map(() => ({ type: 'image_url', image_url: { url: PNG_URL } })),
          },
        ],
      },
      400,
      /At most 2 images/,
    ],
    [
      'an unknown part type',
      { messages: [{ role: 'user', content: [{ type: 'audio' }] }] },
      400,
      /must be "text" or "image_url"/,
    ],
    [
      'a temperature out of range',
      { messages: [{ role: 'user', content: 'x' }], temperature: 3 },
      400,
      /between 0 and 2/,
    ],
    [
      'a fractional max_tokens',
      { messages: [{ role: 'user', content: 'x' }], max_tokens: 1.5 },
      400,
      /integer/,
    ],
    [
      'a negative max_tokens',
      { messages: [{ role: 'user', content: 'x' }], max_tokens: -1 },
      400,
      /max_tokens/,
    ],
    [
      'five stop strings',
      { messages: [{ role: 'user', content: 'x' }], stop: ['a', 'b', 'c', 'd', 'e'] },
      400,
      /up to 4/,
    ],
    ['n > 1', { messages: [{ role: 'user', content: 'x' }], n: 2 }, 400, /n = 1/],
    [
      'stream that is not a boolean',
      { messages: [{ role: 'user', content: 'x' }], stream: 'yes' },
      400,
      /"stream" must be a boolean/,
    ],
  ];
  for (const [name, body, status, message] of refusals) {
    it(`refuses ${name} with ${status}`, () => {
      const error = apiErrorOf(() => parseChatRequest(body, LIMITS));
      assert.equal(error.status, status);
      assert.match(error.message, message);
      assert.equal(error.toJSON().error.type, 'invalid_request_error');
    });
  }
});

describe('request guard', () => {
  it('accepts loopback host names only', () => {
    for (const host of [
      'localhost',
      'localhost:8080',
      '127.0.0.1:1234',
      '127.1.2.3',
      '[::1]:80',
      '[::1]',
    ]) {
      checkHost(host);
    }
    for (const host of [
      'evil.example',
      'evil.example:80',
      '10.0.0.1',
      'localhost.evil.example',
      '',
      undefined,
    ]) {
      assert.equal(apiErrorOf(() => checkHost(host)).status, 403, String(host));
    }
    checkHost('192.168.1.5:9000', ['192.168.1.5']);
    assert.equal(hostName('[::1]:8080'), '::1');
  });

  it('requires the exact bearer token', () => {
    checkBearer('Bearer s3cret', 's3cret');
    checkBearer('bearer   s3cret', 's3cret');
    assert.equal(apiErrorOf(() => checkBearer(undefined, 's3cret')).code, 'missing_token');
    assert.equal(apiErrorOf(() => checkBearer('Basic czNjcmV0', 's3cret')).code, 'missing_token');
    assert.equal(apiErrorOf(() => checkBearer('Bearer s3cre', 's3cret')).code, 'invalid_token');
  });
});

describe('engine errors as API errors', () => {
  it('maps refusals to client errors and hides internal failures behind a log reference', () => {
    const logged: string[] = [];
    const log = (reference: string) => logged.push(reference);
    assert.equal(toApiError(new EngineError('bad_image', 'corrupt'), log).status, 400);
    assert.equal(toApiError(new EngineError('image_too_large', 'big'), log).status, 413);
    const overflow = toApiError(new EngineError('context_overflow', '5000 > 4096'), log);
    assert.deepEqual(
      [overflow.status, overflow.code, overflow.message],
      [400, 'context_length_exceeded', '5000 > 4096'],
    );
    assert.equal(logged.length, 0);
    const internal = toApiError(new Error('secret detail'), log);
    assert.equal(internal.status, 500);
    assert.equal(logged.length, 1);
    assert.ok(internal.message.includes(logged[0]), 'the reference is in the message');
    assert.ok(!internal.message.includes('secret detail'));
  });
});

describe('generation queue', () => {
  const deferred = () => {
    let resolve!: () => void;
    const promise = new Promise<void>((r) => (resolve = r));
    return { promise, resolve };
  };

  it('runs one task at a time in arrival order and refuses beyond its bound', async () => {
    const queue = new GenerationQueue(2);
    const order: string[] = [];
    const gate = deferred();
    const first = queue.run(async () => {
      order.push('first');
      await gate.promise;
    });
    const second = queue.run(async () => void order.push('second'));
    const third = queue.run(async () => void order.push('third'));
    assert.equal(queue.length, 2);
    assert.ok(queue.busy);
    await assert.rejects(
      queue.run(async () => {}),
      (error: ApiError) => error.status === 429,
    );
    gate.resolve();
    await Promise.all([first, second, third]);
    assert.deepEqual(order, ['first', 'second', 'third']);
    assert.ok(!queue.busy);
  });

  it('drops a waiting task whose signal fires, without running it', async () => {
    const queue = new GenerationQueue(4);
    const gate = deferred();
    const first = queue.run(() => gate.promise);
    const controller = new AbortController();
    let ran = false;
    const waiting = queue.run(async () => void (ran = true), controller.signal);
    controller.abort(new Error('client left'));
    await assert.rejects(waiting, /client left/);
    assert.equal(queue.length, 0);
    gate.resolve();
    await first;
    assert.equal(ran, false);
  });
});

describe('download progress throttle', () => {
  const at = (file: string, bytes: number, total = 10): DownloadProgress => ({
    file,
    bytes,
    total,
    overallBytes: bytes,
    overallTotal: total,
  });

  it('passes one report per interval per file, and always the end of a file', () => {
    let clock = 0;
    const seen: string[] = [];
    const report = throttleProgress(
      (progress) => seen.push(`${progress.file}:${progress.bytes}`),
      100,
      () => clock,
    );
    report(at('a', 1));
    report(at('a', 2)); // too soon: held back
    clock = 150;
    report(at('a', 3));
    report(at('a', 10)); // a file's end always passes
    report(at('b', 1)); // a new file passes
    assert.deepEqual(seen, ['a:1', 'a:3', 'a:10', 'b:1']);
  });

  it('sends a held-back report when the interval ends, so a stall shows the real bytes', async () => {
    const seen: number[] = [];
    const report = throttleProgress((progress) => seen.push(progress.bytes), 20);
    report(at('a', 1));
    report(at('a', 2));
    report(at('a', 5));
    assert.deepEqual(seen, [1]);
    await new Promise((resolve) => setTimeout(resolve, 60));
    assert.deepEqual(seen, [1, 5]);
  });
});
