/**
 * A run that fails inside onnxruntime (an out-of-memory, a provider error) after it has already
 * changed the KV cache must not poison the engine: the queue goes on, and the next request,
 * including one that reuses the cached prefix, gives the reference's answer. The failure is
 * injected into the real model's decoder right after a real run (onnxruntime is the party
 * outside the project), when the cache holds a row the generation never accounted for.
 */
import { strict as assert } from 'node:assert';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadChatCheckpoint } from '../../server/engine/chat/chat-checkpoint';
import type { Engine, LoadedModel, TextDecoder } from '../../server/engine/contracts';
import { createChatEngine } from '../../server/engine/generation/chat-engine';
import { loadModel } from '../../server/engine/runtime/load-model';
import { goldenCases, goldenMessages, TINY_MODEL_DIR } from './golden-fixture';

const ORT_FAILURE = "Non-zero status code returned while running MatMul node. Name:'/lm_head'";

describe('an onnxruntime failure in the middle of a generation', function () {
  this.timeout(120000);
  let cacheDir: string;
  let model: LoadedModel;
  let engine: Engine;
  let failAfterRuns: number | undefined;

  before(async () => {
    cacheDir = mkdtempSync(join(tmpdir(), 'd2c-run-failure-'));
    model = await loadModel(TINY_MODEL_DIR, { cacheDir, device: 'cpu', precision: 'fp32' });
    const real = model.decoder;
    const decoder = new Proxy(real, {
      get(target, prop) {
        const value = Reflect.get(target, prop, target);
        const runs = ['step', 'stepGreedy', 'extend', 'extendTop'];
        if (!runs.includes(String(prop)) || typeof value !== 'function') {
          return typeof value === 'function' ? value.bind(target) : value;
        }
        return async (...args: unknown[]) => {
          const result = await value.apply(target, args);
          if (failAfterRuns !== undefined && --failAfterRuns === 0) {
            failAfterRuns = undefined;
            throw new Error(ORT_FAILURE);
          }
          return result;
        };
      },
    }) as TextDecoder;
    const faulty: LoadedModel = {
      device: model.device,
      precision: model.precision,
      vision: model.vision,
      decoder,
      dispose: () => model.dispose(),
    };
    engine = createChatEngine(faulty, loadChatCheckpoint(TINY_MODEL_DIR), { modelName: 'tiny' });
  });
  after(async () => {
    await engine?.dispose();
    rmSync(cacheDir, { recursive: true, force: true });
  });

  for (const golden of goldenCases().filter((c) => c.name !== 'small_image')) {
    it(`${golden.name}: the failed run rejects, then the same request gives the reference's tokens`, async () => {
      const request = {
        messages: goldenMessages(golden),
        maxNewTokens: 24,
        sampling: { greedy: true },
      };
      failAfterRuns = 3;
      await assert.rejects(engine.generate(request), (e: Error) => e.message === ORT_FAILURE);
      const result = await engine.generate(request);
      assert.deepEqual(result.tokenIds, golden.greedy_new_tokens);
      // And again, now through the reused prefix of a healthy run.
      const again = await engine.generate(request);
      assert.deepEqual(again.tokenIds, golden.greedy_new_tokens);
      assert.ok(again.stats!.reusedTokens > 0);
    });
  }
});
