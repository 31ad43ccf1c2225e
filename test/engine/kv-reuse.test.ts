/**
 * Reuse across generations: a refinement (same image, previous answer, new instruction) keeps
 * the KV cache of the common prefix and prefills only the rest, with exactly the cold result;
 * a different image or an edited earlier turn falls back correctly; vision outputs and image
 * layouts are cached by image hash.
 */
import { strict as assert } from 'node:assert';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import sharp from 'sharp';
import type {
  ChatMessage,
  Engine,
  GenerateRequest,
  TextDecoder,
} from '../../server/engine/contracts';
import { loadChatCheckpoint } from '../../server/engine/chat/chat-checkpoint';
import { loadEngine } from '../../server/engine/engine';
import { createChatEngine } from '../../server/engine/generation/chat-engine';
import { ImageEmbeddingCache } from '../../server/engine/generation/image-cache';
import { reusablePrefix } from '../../server/engine/generation/prefix-reuse';
import { VISION_INPUTS } from '../../server/engine/onnx/vision-graph';
import { loadModel } from '../../server/engine/runtime/load-model';
import { TINY_IMAGES_DIR, TINY_MODEL_DIR } from './golden-fixture';
import { requireWebGpu } from './support/webgpu';

const PAD = 99;

/**
 * Aborts `stop` from the event loop, as a closed socket would, once the decoder has finished
 * `runs` graph runs (its chunks, in a prefill): the stop is seen only if the prefill lets the
 * event loop turn before its next chunk.
 */
function stopAfterRuns(decoder: TextDecoder, runs: number, stop: AbortController): void {
  const patched = decoder as unknown as { execute: (run: unknown) => Promise<unknown> };
  const execute = patched.execute.bind(decoder);
  let done = 0;
  patched.execute = async (run) => {
    const scores = await execute(run);
    if (++done === runs) setImmediate(() => stop.abort());
    return scores;
  };
}

describe('reusable prefix', () => {
  it('keeps the common prefix when every image lies in it and is the same image', () => {
    const cached = { ids: [1, 2, PAD, PAD, 3, 4, 5], imageKeys: ['a'] };
    assert.equal(reusablePrefix(cached, [1, 2, PAD, PAD, 3, 4, 5, 6, 7], ['a'], PAD), 7);
    assert.equal(reusablePrefix(cached, [1, 2, PAD, PAD, 3, 8, 9], ['a'], PAD), 5);
  });

  it('keeps at most all but the last prompt token (one must run for logits)', () => {
    const cached = { ids: [1, 2, 3, 4], imageKeys: [] };
    assert.equal(reusablePrefix(cached, [1, 2, 3], [], PAD), 2);
  });

  it('refuses a different image, an image after the divergence, or nothing in common', () => {
    const cached = { ids: [1, 2, PAD, PAD, 3], imageKeys: ['a'] };
    assert.equal(reusablePrefix(cached, [1, 2, PAD, PAD, 3, 4], ['b'], PAD), 0);
    assert.equal(reusablePrefix(cached, [1, 5, PAD, PAD, 3, 4], ['a'], PAD), 0);
    assert.equal(reusablePrefix(cached, [1, 2, PAD, PAD, 3, 4, PAD], ['a', 'c'], PAD), 0);
    assert.equal(reusablePrefix({ ids: [], imageKeys: [] }, [1, 2], [], PAD), 0);
  });
});

describe('image embedding cache', () => {
  const output = (rows: number) => ({
    tokens: rows,
    imageEmbeds: new Float32Array(rows * 4),
    deepstack: [new Float32Array(rows * 4)],
  });
  it('evicts the least recently used beyond its byte bound', () => {
    const cache = new ImageEmbeddingCache(3 * 32); // three 1-row entries of 32 bytes
    cache.set('a', output(1));
    cache.set('b', output(1));
    cache.set('c', output(1));
    assert.ok(cache.get('a')); // a is now the most recent
    cache.set('d', output(1));
    assert.equal(cache.get('b'), undefined);
    assert.ok(cache.get('a') && cache.get('c') && cache.get('d'));
    cache.set('huge', output(100)); // larger than the bound: not kept, nothing evicted
    assert.equal(cache.size, 3);
  });
});

for (const device of ['cpu', 'webgpu'] as const) {
  describe(`KV prefix reuse in the engine (tiny checkpoint, ${device}, fp32)`, function () {
    this.timeout(120_000);
    let cacheDir: string;
    let warm: Engine;
    let cold: Engine;
    /**
     * Keeps no vision outputs (in memory or on disk), so a known image whose cache cannot be
     * reused needs its pixels.
     */
    let forgetful: Engine;
    const image = (name: string) => new Uint8Array(readFileSync(join(TINY_IMAGES_DIR, name)));
    const mockup = image('mockup_320x256.png');
    const diagram = image('diagram_450x230.png');
    const ask = (img: Uint8Array, text: string): ChatMessage => ({
      role: 'user',
      content: [
        { type: 'image', image: img },
        { type: 'text', text },
      ],
    });
    const request = (messages: ChatMessage[], maxNewTokens = 24): GenerateRequest => ({
      messages,
      maxNewTokens,
      sampling: { greedy: true },
    });
    /** A fresh generation: the cold engine's cache is cleared by an unrelated prompt first. */
    const coldRun = async (r: GenerateRequest) => {
      await cold.generate(request([{ role: 'user', content: 'unrelated' }], 1));
      const result = await cold.generate(r);
      assert.equal(result.stats!.reusedTokens, 0);
      return result;
    };

    before(async function () {
      if (device === 'webgpu') await requireWebGpu(this);
      cacheDir = mkdtempSync(join(tmpdir(), 'd2c-reuse-'));
      const options = { modelDir: TINY_MODEL_DIR, cacheDir, device };
      warm = await loadEngine({ ...options, precision: 'fp32' });
      cold = await loadEngine({ ...options, precision: 'fp32' });
      forgetful = createChatEngine(
        await loadModel(TINY_MODEL_DIR, { cacheDir, device, precision: 'fp32' }),
        loadChatCheckpoint(TINY_MODEL_DIR),
        { modelName: 'tiny', imageCacheBytes: 0, imageDiskCacheBytes: 0 },
      );
    });
    after(async () => {
      await warm?.dispose();
      await cold?.dispose();
      await forgetful?.dispose();
      rmSync(cacheDir, { recursive: true, force: true });
    });

    it('a refinement prefills only its new tokens and equals a cold run token for token', async () => {
      const first = request([ask(mockup, 'Generate the HTML for this UI.')]);
      const answer = await warm.generate(first);
      assert.equal(answer.stats!.reusedTokens, 0);
      const refine = request(
        [
          ...first.messages,
          { role: 'assistant', content: answer.text },
          { role: 'user', content: 'Make the header blue.' },
        ],
        32,
      );
      const reused = await warm.generate(refine);
      const reference = await coldRun(refine);
      assert.deepEqual(reused.tokenIds, reference.tokenIds);
      assert.equal(reused.text, reference.text);
      const stats = reused.stats!;
      console.log(
        `      refinement: ${reused.promptTokenIds.length} prompt tokens, ${stats.reusedTokens} reused, ${stats.prefilledTokens} prefilled; vision ${reused.timingsMs.visionMs.toFixed(1)} ms`,
      );
      assert.ok(stats.reusedTokens >= answer.promptTokenIds.length, 'the first prompt is reused');
      assert.equal(stats.reusedTokens + stats.prefilledTokens, reused.promptTokenIds.length);
      // The answer re-tokenized inside the template may differ from the generated ids (the
      // template trims the assistant text), so reuse can stop inside the answer, never before it.
      assert.ok(stats.prefilledTokens < reference.stats!.prefilledTokens);
    });

    it('reads a prompt ahead (no new tokens): the request then runs only its last token, as a cold run answers', async () => {
      const first = request([ask(mockup, 'Generate the HTML for this UI.')]);
      const answer = await warm.generate(first);
      const refine = request(
        [
          ...first.messages,
          { role: 'assistant', content: answer.text },
          { role: 'user', content: 'Make the header blue.' },
        ],
        16,
      );
      const ahead = await warm.generate({ ...refine, maxNewTokens: 0 });
      assert.deepEqual(ahead.tokenIds, []);
      assert.equal(ahead.finishReason, 'length');
      const refined = await warm.generate(refine);
      assert.equal(refined.stats!.prefilledTokens, 1);
      assert.deepEqual(refined.tokenIds, (await coldRun(refine)).tokenIds);
    });

    it('a different image falls back to a full prefill with the right answer', async () => {
      await warm.generate(request([ask(mockup, 'Generate the HTML for this UI.')]));
      const other = request([ask(diagram, 'Generate the HTML for this UI.')]);
      const result = await warm.generate(other);
      assert.equal(result.stats!.reusedTokens, 0);
      assert.deepEqual(result.tokenIds, (await coldRun(other)).tokenIds);
    });

    it('an edited earlier turn keeps only the identical prefix and matches a cold run', async () => {
      const first = request([ask(mockup, 'Generate the HTML for this UI.')]);
      const answer = await warm.generate(first);
      const edited = request([
        ask(mockup, 'Generate the React code for this UI.'),
        { role: 'assistant', content: answer.text },
        { role: 'user', content: 'Make the header blue.' },
      ]);
      const result = await warm.generate(edited);
      const stats = result.stats!;
      assert.ok(stats.reusedTokens > 0 && stats.reusedTokens < answer.promptTokenIds.length);
      assert.deepEqual(result.tokenIds, (await coldRun(edited)).tokenIds);
    });

    it('a generation stopped before its prefill leaves the cache as it was: a same-sized image then gets its own prefill', async () => {
      const task = 'Generate the HTML for this UI.';
      await warm.generate(request([ask(mockup, task)]));
      // Same size, so the same prompt ids: only the image keys tell the two apart.
      const negative = new Uint8Array(await sharp(mockup).negate().png().toBuffer());
      const other = request([ask(negative, task)]);
      const stop = new AbortController();
      const stopped = await warm.generate(other, {
        signal: stop.signal,
        onPromptReady: () => stop.abort(), // before the vision tower
      });
      assert.equal(stopped.finishReason, 'cancelled');
      const result = await warm.generate(other);
      assert.equal(result.stats!.reusedTokens, 0);
      assert.deepEqual(result.tokenIds, (await coldRun(other)).tokenIds);
    });

    it('a stop between prompt chunks keeps the chunks already run, and the same prompt goes on from them', async () => {
      const model = await loadModel(TINY_MODEL_DIR, {
        cacheDir,
        device,
        precision: 'fp32',
        prefillChunk: 16,
      });
      const engine = createChatEngine(model, loadChatCheckpoint(TINY_MODEL_DIR), {
        modelName: 'tiny',
      });
      try {
        const long = request(
          [{ role: 'user', content: `A settings page with ${'toggles and sliders, '.repeat(12)}` }],
          8,
        );
        const stop = new AbortController();
        stopAfterRuns(model.decoder, 1, stop);
        const stopped = await engine.generate(long, { signal: stop.signal });
        assert.equal(stopped.finishReason, 'cancelled');
        assert.deepEqual(stopped.tokenIds, []);
        assert.ok(stopped.promptTokenIds.length > 32, 'the prompt spans several chunks');
        assert.equal(model.decoder.pastLength, 16, 'one chunk ran');
        const resumed = await engine.generate(long);
        assert.equal(resumed.stats!.reusedTokens, 16);
        // Text-only: the cold engine shares at most the chat template's first tokens.
        const reference = await cold.generate(long);
        assert.ok(reference.stats!.reusedTokens < 16);
        assert.deepEqual(resumed.tokenIds, reference.tokenIds);
      } finally {
        await engine.dispose();
      }
    });

    // The CPU build's tower runs in stages (in one run on GPUs).
    if (device === 'cpu') {
      it('a stop during the vision tower takes effect between its stages, and the same request goes on from there', async () => {
        const model = await loadModel(TINY_MODEL_DIR, { cacheDir, device, precision: 'fp32' });
        // The tower must run: no outputs from the disk cache the other engines wrote.
        const engine = createChatEngine(model, loadChatCheckpoint(TINY_MODEL_DIR), {
          modelName: 'tiny',
          imageDiskCacheBytes: 0,
        });
        try {
          const session = (model.vision as unknown as { session: ort.InferenceSession }).session;
          const ran: number[] = [];
          const stop = new AbortController();
          const run = session.run.bind(session);
          (session as { run: unknown }).run = async (feeds: ort.InferenceSession.FeedsType) => {
            const result = await run(feeds);
            ran.push(Number(feeds[VISION_INPUTS.stage].data[0]));
            if (ran.length === 2) setImmediate(() => stop.abort());
            return result;
          };
          const generate = request([ask(mockup, 'Generate the HTML for this UI.')]);
          const stopped = await engine.generate(generate, { signal: stop.signal });
          assert.equal(stopped.finishReason, 'cancelled');
          assert.deepEqual(stopped.tokenIds, []);
          assert.deepEqual(ran, [0, 1], 'stopped after the second stage');
          const resumed = await engine.generate(generate);
          assert.deepEqual(ran, [0, 1, 2, 3], 'then the rest of the stages only');
          assert.deepEqual(resumed.tokenIds, (await coldRun(generate)).tokenIds);
        } finally {
          await engine.dispose();
        }
      });
    }

    it('an image seen before skips the vision tower even when the cache cannot be reused', async () => {
      const text = request([{ role: 'user', content: 'hello' }], 2);
      await warm.generate(text); // the KV cache now holds a text-only chat
      const again = request([ask(diagram, 'Return the XML.')]);
      const result = await warm.generate(again);
      assert.equal(result.stats!.reusedTokens, 0);
      assert.equal(result.stats!.cachedImages, 1);
      assert.deepEqual(result.tokenIds, (await coldRun(again)).tokenIds);
    });

    it('a known image is laid out without its pixels, which are decoded only if vision must run', async () => {
      const again = request([ask(diagram, 'Return the XML.')]);
      const first = await forgetful.generate(again);
      await forgetful.generate(request([{ role: 'user', content: 'hello' }], 2));
      // Same image, no vision output kept, no reusable cache: laid out from memory, then decoded
      // for the vision tower.
      const second = await forgetful.generate(again);
      assert.equal(second.stats!.reusedTokens, 0);
      assert.equal(second.stats!.cachedImages, 0);
      assert.deepEqual(second.tokenIds, first.tokenIds);
      assert.deepEqual(second.tokenIds, (await coldRun(again)).tokenIds);
    });
  });
}
