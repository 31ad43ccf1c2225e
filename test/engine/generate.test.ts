import { strict as assert } from 'node:assert';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Engine } from '../../server/engine/contracts';
import { loadEngine } from '../../server/engine/engine';
import { isEngineError } from '../../server/engine/errors';
import { goldenCases, goldenMessages, TINY_MODEL_DIR } from './golden-fixture';

describe('Engine.generate on the tiny checkpoint (CPU, fp32) vs transformers', () => {
  let cacheDir: string;
  let engine: Engine;
  before(async () => {
    cacheDir = mkdtempSync(join(tmpdir(), 'd2c-generate-'));
    engine = await loadEngine({
      modelDir: TINY_MODEL_DIR,
      cacheDir,
      device: 'cpu',
      precision: 'fp32',
    });
  });
  after(async () => {
    await engine?.dispose();
    rmSync(cacheDir, { recursive: true, force: true });
  });

  it('reports what it runs on', () => {
    assert.deepEqual(engine.info, {
      model: 'model',
      device: 'cpu',
      precision: 'fp32',
      contextLength: 4096,
    });
  });

  for (const golden of goldenCases()) {
    it(`${golden.name}: the 24 greedy tokens and their text are the reference's`, async () => {
      const deltas: string[] = [];
      let promptInfo: { promptTokens: number; images: number } | undefined;
      const result = await engine.generate(
        { messages: goldenMessages(golden), maxNewTokens: 24, sampling: { greedy: true } },
        { onText: (d) => deltas.push(d), onPromptReady: (info) => (promptInfo = info) },
      );
      assert.deepEqual(result.promptTokenIds, golden.input_ids);
      assert.deepEqual(result.tokenIds, golden.greedy_new_tokens);
      assert.equal(result.text, golden.greedy_text);
      assert.equal(deltas.join(''), golden.greedy_text);
      assert.equal(result.finishReason, 'length');
      assert.deepEqual(result.imageGridThw, golden.image_grid_thw ?? []);
      assert.deepEqual(promptInfo, {
        promptTokens: golden.input_ids.length,
        images: golden.images.length,
      });
      const t = result.timingsMs;
      assert.ok(t.totalMs >= t.preprocessMs + t.visionMs + t.prefillMs);
      assert.ok(t.perTokenMs > 0 && t.firstTokenMs > 0);
    });
  }

  const textOnly = () => goldenCases().find((c) => c.name === 'text_only')!;

  it('samples reproducibly for a seed', async () => {
    const request = {
      messages: goldenMessages(textOnly()),
      maxNewTokens: 8,
      sampling: { temperature: 1.5, topK: 0, topP: 1, seed: 1234 },
    };
    const first = await engine.generate(request);
    const second = await engine.generate(request);
    const other = await engine.generate({
      ...request,
      sampling: { ...request.sampling, seed: 99 },
    });
    assert.deepEqual(first.tokenIds, second.tokenIds);
    assert.notDeepEqual(first.tokenIds, other.tokenIds);
  });

  it('stops at a stop string and leaves it out', async () => {
    // The greedy reply is " enforcing enforcing ...".
    const result = await engine.generate({
      messages: goldenMessages(textOnly()),
      maxNewTokens: 24,
      sampling: { greedy: true },
      stop: ['ing enf'],
    });
    assert.equal(result.text, ' enforc');
    assert.equal(result.finishReason, 'stop');
    assert.equal(result.tokenIds.length, 2);
  });

  it('stops when the AbortSignal fires, returning the text so far', async () => {
    const controller = new AbortController();
    let seen = 0;
    const result = await engine.generate(
      { messages: goldenMessages(textOnly()), maxNewTokens: 24, sampling: { greedy: true } },
      {
        signal: controller.signal,
        onText: () => {
          if (++seen === 3) controller.abort();
        },
      },
    );
    assert.equal(result.finishReason, 'cancelled');
    assert.equal(result.tokenIds.length, 3);
    assert.equal(result.text, ' enforcing enforcing enforcing');
  });

  it('applies the repetition penalty (greedy repeats " enforcing" without it)', async () => {
    const result = await engine.generate({
      messages: goldenMessages(textOnly()),
      maxNewTokens: 4,
      sampling: { greedy: true, repetitionPenalty: 1.5 },
    });
    assert.equal(result.tokenIds[0], textOnly().greedy_new_tokens[0]);
    assert.equal(new Set(result.tokenIds).size, result.tokenIds.length, 'no token repeats');
  });

  it('runs a chat with two images, each expanded and positioned in order', async () => {
    const cases = goldenCases();
    const [mockup] = goldenMessages(cases.find((c) => c.name === 'html_mockup')!);
    const [small] = goldenMessages(cases.find((c) => c.name === 'small_image')!);
    const imageOf = (m: (typeof mockup)['content']) =>
      (m as { type: string }[]).find((p) => p.type === 'image') as {
        type: 'image';
        image: Uint8Array;
      };
    const chat = (first: Uint8Array, second: Uint8Array) =>
      engine.generate({
        messages: [
          {
            role: 'user',
            content: [
              { type: 'image', image: first },
              { type: 'text', text: 'and' },
              { type: 'image', image: second },
            ],
          },
        ],
        maxNewTokens: 4,
        sampling: { greedy: true },
      });
    const a = imageOf(mockup.content).image;
    const b = imageOf(small.content).image;
    const ab = await chat(a, b);
    assert.deepEqual(ab.imageGridThw, [
      [1, 16, 20],
      [1, 14, 20],
    ]);
    assert.equal(ab.promptTokenIds.filter((id) => id === 151655).length, 80 + 70);
    const ba = await chat(b, a);
    assert.notDeepEqual(ab.tokenIds, ba.tokenIds, 'image order reaches the model');
  });

  it('refuses a prompt plus budget beyond the context, naming the numbers', async () => {
    await assert.rejects(
      engine.generate({ messages: goldenMessages(textOnly()), maxNewTokens: 4090 }),
      (e) => isEngineError(e, 'context_overflow') && /14 tokens.*4090.*4104.*4096/.test(e.message),
    );
  });

  it('refuses an image that is not an image', async () => {
    await assert.rejects(
      engine.generate({
        messages: [
          {
            role: 'user',
            content: [{ type: 'image', image: new TextEncoder().encode('not a picture') }],
          },
        ],
      }),
      (e) => isEngineError(e, 'bad_image'),
    );
  });
});
