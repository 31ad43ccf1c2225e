/**
 * The engine with WebGPU graph capture (load option graphCapture; captured-decoder.ts): the text
 * decoder on onnxruntime-web, its one-token step replayed from a recording, prompts and
 * verification runs on the prompt form over the same cache. On a screenshot prompt (image rows
 * with their own MRoPE positions), with speculation, and on a refinement that reuses the cached
 * prefix, it answers token for token what the engine's own WebGPU decoder (onnxruntime-node)
 * answers; its fixed cache bounds the context it reports. A random model with 16-wide heads
 * (the in-place forms need GroupQueryAttention's rotary).
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseGenerateArgs } from '../../server/commands/generate';
import { UsageError } from '../../server/commands/options';
import { loadChatCheckpoint } from '../../server/engine/chat/chat-checkpoint';
import type {
  ChatMessage,
  Engine,
  GenerateRequest,
  LoadedModel,
  TextDecoder,
  TopLogits,
} from '../../server/engine/contracts';
import { isEngineError } from '../../server/engine/errors';
import { createChatEngine } from '../../server/engine/generation/chat-engine';
import { argmax } from '../../server/engine/generation/sampling';
import { loadModel } from '../../server/engine/runtime/load-model';
import { TINY_IMAGES_DIR } from './golden-fixture';
import { requireWebGpu } from './support/webgpu';
import {
  GRID_PROMPT,
  GRID_PROMPT_NEXT_POSITION,
  writeWideHeadCheckpoint,
} from './support/wide-head-model';

const CAPACITY = 384;
/** Rows of the second captured model's verification run. */
const VERIFY_ROWS = 24;

/**
 * A decoder's logits through every kind of run: a prompt whose middle tokens have distinct
 * t/h/w positions, steps (whole rows, then best logits only), a verification run, a step after
 * dropping two rejected rows, and a prompt that reuses the cached prefix. Generated text token
 * k after the prompt sits at position GRID_PROMPT_NEXT_POSITION + k.
 */
async function logitsOf(decoder: TextDecoder): Promise<{ rows: Float32Array[]; best: number[] }> {
  const n = GRID_PROMPT.inputIds.length;
  const at = (row: number) => GRID_PROMPT_NEXT_POSITION + row - n;
  const rows = [Float32Array.from(await decoder.prefill(GRID_PROMPT))];
  for (const token of [21, 22, 23]) {
    rows.push(Float32Array.from(await decoder.step(token, at(decoder.pastLength))));
  }
  const [top] = await decoder.extendTop([24], at(decoder.pastLength));
  rows.push(Float32Array.from(top.logits));
  for (const row of await decoder.extend([30, 31, 32], at(decoder.pastLength))) {
    rows.push(Float32Array.from(row));
  }
  decoder.truncate(decoder.pastLength - 2);
  rows.push(Float32Array.from(await decoder.step(33, at(decoder.pastLength))));
  const ids = [...decoder.cachedIds, 34, 35];
  const text = ids.slice(n).map((_, i) => at(n + i));
  const positionIds = GRID_PROMPT.positionIds.map((stream) => [...stream, ...text]);
  const reused = await decoder.prefill({
    inputIds: ids,
    positionIds: positionIds as [number[], number[], number[]],
    reuse: ids.length - 2,
  });
  rows.push(Float32Array.from(reused));
  return { rows, best: top.ids };
}

describe('--graph-capture N', () => {
  const base = ['--model', 'm', '--messages', 'x.json'];
  it('takes the cache capacity in positions', () => {
    assert.equal(parseGenerateArgs(base)!.graphCapture, undefined);
    assert.deepEqual(parseGenerateArgs([...base, '--graph-capture', '4096'])!.graphCapture, {
      capacity: 4096,
    });
  });
  it('refuses what is not a capacity', () => {
    for (const bad of ['8', '4k', '1.5', '0']) {
      assert.throws(
        () => parseGenerateArgs([...base, '--graph-capture', bad]),
        (error) => error instanceof UsageError && /--graph-capture/.test(error.message),
      );
    }
  });
  it('is refused, before any build, on a device other than WebGPU', async () => {
    await assert.rejects(
      loadModel('no-such-model', { device: 'cpu', graphCapture: { capacity: 4096 } }),
      (error) => isEngineError(error, 'bad_request') && /WebGPU only/.test(error.message),
    );
  });
});

describe('engine with WebGPU graph capture (onnxruntime-web)', function () {
  this.timeout(900_000);
  let dir: string;
  let models: LoadedModel[] = [];
  let plain: Engine;
  let captured: Engine;
  /** With a captured verification run of VERIFY_ROWS tokens. */
  let capturedVerify: Engine;
  const mockup = new Uint8Array(readFileSync(join(TINY_IMAGES_DIR, 'mockup_320x256.png')));
  const ask: ChatMessage = {
    role: 'user',
    content: [
      { type: 'image', image: mockup },
      { type: 'text', text: 'Generate the HTML for this UI.' },
    ],
  };
  const request = (messages: ChatMessage[]): GenerateRequest => ({
    messages,
    maxNewTokens: 24,
    sampling: { greedy: true },
  });

  before(async function () {
    await requireWebGpu(this);
    dir = mkdtempSync(join(tmpdir(), 'd2c-captured-'));
    const modelDir = join(dir, 'model');
    writeWideHeadCheckpoint(modelDir);
    const options = { cacheDir: join(dir, 'onnx'), device: 'webgpu' as const, precision: 'int4' };
    models = [
      await loadModel(modelDir, { ...options, precision: 'int4' }),
      await loadModel(modelDir, {
        ...options,
        precision: 'int4',
        graphCapture: { capacity: CAPACITY },
      }),
      await loadModel(modelDir, {
        ...options,
        precision: 'int4',
        graphCapture: { capacity: CAPACITY, verifyRows: VERIFY_ROWS },
      }),
    ];
    const engine = (model: LoadedModel) =>
      createChatEngine(model, loadChatCheckpoint(modelDir), { modelName: 'wide-head' });
    [plain, captured, capturedVerify] = models.map(engine);
  });
  after(async () => {
    for (const model of models) await model.dispose();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('builds the in-place forms with one copy of the weights', () => {
    const files = (variant: string) => readdirSync(join(dir, 'onnx', build(variant))).sort();
    const build = (variant: string) =>
      readdirSync(join(dir, 'onnx')).find((name) => name.startsWith(`${variant}-`))!;
    const common = ['build.json', 'decoder-prompt.onnx', 'decoder-prompt.onnx.data'];
    const vision = ['vision.onnx', 'vision.onnx.data'];
    assert.deepEqual(files(`gpu-int4-captured-${CAPACITY}`), [
      ...common,
      'decoder-step.onnx',
      ...vision,
    ]);
    assert.deepEqual(files(`gpu-int4-captured-${CAPACITY}-verify-${VERIFY_ROWS}`), [
      ...common,
      'decoder-step.onnx',
      'decoder-verify.onnx',
      ...vision,
    ]);
  });

  it("computes the decoder's logits: prompt, steps, verification runs, truncation, reuse", async () => {
    const plainRuns = await logitsOf(models[0].decoder);
    for (const [how, model] of [
      ['verification on the prompt form', models[1]],
      ['captured verification run', models[2]],
    ] as const) {
      const capturedRuns = await logitsOf(model.decoder);
      assert.deepEqual(capturedRuns.best, plainRuns.best, how);
      const [want, got] = [plainRuns.rows, capturedRuns.rows];
      assert.equal(got.length, want.length, how);
      for (let i = 0; i < want.length; i++) {
        const scale = want[i].reduce((m, v) => Math.max(m, Math.abs(v)), 0);
        let diff = 0;
        for (let j = 0; j < want[i].length; j++) {
          diff = Math.max(diff, Math.abs(got[i][j] - want[i][j]));
        }
        assert.ok(diff < 2e-2 * scale, `${how}, row ${i}: ${diff} (logits up to ${scale})`);
        assert.equal(argmax(got[i]), argmax(want[i]), `${how}, row ${i}: best token`);
      }
    }
  });

  it('pipelined greedy steps (stepGreedy) give what plain steps give, whatever call comes next', async () => {
    /** Greedy steps, a step with another token than the argmax, a verification run, more steps. */
    const run = async (decoder: TextDecoder, pipelined: boolean) => {
      const greedy = (token: number, position: number) =>
        pipelined
          ? decoder.stepGreedy!(token, position)
          : decoder.extendTop([token], position).then((rows) => rows[0]);
      const n = GRID_PROMPT.inputIds.length;
      const at = () => GRID_PROMPT_NEXT_POSITION + decoder.pastLength - n;
      const rows: TopLogits[] = [];
      let token = argmax(await decoder.prefill(GRID_PROMPT));
      for (let i = 0; i < 6; i++) {
        rows.push(await greedy(token, at()));
        token = rows.at(-1)!.ids[0];
      }
      // Not the argmax: the queued step is not this one.
      rows.push(await greedy(token + 1, at()));
      token = rows.at(-1)!.ids[0];
      rows.push(await greedy(token, at()));
      rows.push(...(await decoder.extendTop([rows.at(-1)!.ids[0], 7, 8], at())));
      decoder.truncate(decoder.pastLength - 1);
      token = 9;
      for (let i = 0; i < 4; i++) {
        rows.push(await greedy(token, at()));
        token = rows.at(-1)!.ids[0];
      }
      return rows;
    };
    const want = await run(models[0].decoder, false);
    const got = await run(models[1].decoder, true);
    assert.equal(got.length, want.length);
    got.forEach((row, i) => {
      // The best token; below it near-equal logits may swap places between the two runtimes.
      assert.equal(row.ids[0], want[i].ids[0], `row ${i}`);
      const scale = Math.abs(want[i].logits[0]);
      row.logits.forEach((v, j) =>
        assert.ok(Math.abs(v - want[i].logits[j]) < 2e-2 * scale, `row ${i}[${j}]`),
      );
    });
  });

  it("answers a screenshot and its refinement as the engine's own WebGPU decoder does", async () => {
    const first = request([ask]);
    const want = await plain.generate(first);
    const refine = request([
      ask,
      { role: 'assistant', content: want.text },
      { role: 'user', content: 'Make the header blue.' },
    ]);
    const wantRefined = await plain.generate(refine);
    for (const engine of [captured, capturedVerify]) {
      const got = await engine.generate(first);
      assert.deepEqual(got.tokenIds, want.tokenIds);
      assert.equal(got.tokenIds.length, 24);
      const gotRefined = await engine.generate(refine);
      assert.ok(gotRefined.stats!.reusedTokens > 0, 'the refinement reuses the cached prefix');
      assert.equal(gotRefined.stats!.reusedTokens, wantRefined.stats!.reusedTokens);
      assert.deepEqual(gotRefined.tokenIds, wantRefined.tokenIds);
    }
  });

  it('answers as plain greedy decoding with speculation on and off', async () => {
    const messages: ChatMessage[] = [{ role: 'user', content: 'abc abc abc abc abc abc abc' }];
    const off = await captured.generate({ ...request(messages), speculation: false });
    assert.deepEqual(off.tokenIds, (await plain.generate(request(messages))).tokenIds);
    for (const engine of [captured, capturedVerify]) {
      const on = await engine.generate(request(messages));
      assert.ok(on.stats!.draftTokens > 0, 'drafts were verified');
      assert.deepEqual(on.tokenIds, off.tokenIds);
    }
  });

  it('a run that fails mid-generation (a step queued ahead) leaves the next answers right', async () => {
    // The failure is injected after a real run (onnxruntime is the party outside the project),
    // when a pipelined step is queued on the device and the cache holds rows never accounted for.
    const failure = 'Non-zero status code returned while running MatMulNBits';
    const real = models[1].decoder;
    let runsLeft = 4;
    const failing = new Proxy(real, {
      get(target, prop) {
        const value = Reflect.get(target, prop, target);
        if (typeof value !== 'function') return value;
        if (!['stepGreedy', 'extendTop', 'extend', 'step'].includes(String(prop))) {
          return value.bind(target);
        }
        return async (...args: unknown[]) => {
          const result = await value.apply(target, args);
          if (--runsLeft === 0) throw new Error(failure);
          return result;
        };
      },
    }) as TextDecoder;
    const faulty = createChatEngine(
      { ...models[1], decoder: failing },
      loadChatCheckpoint(join(dir, 'model')),
      { modelName: 'wide-head' },
    );
    const first = request([ask]);
    await assert.rejects(faulty.generate(first), (error: Error) => error.message === failure);
    const want = await plain.generate(first);
    assert.deepEqual((await faulty.generate(first)).tokenIds, want.tokenIds);
    // And a refinement through the reused prefix.
    const refine = request([
      ask,
      { role: 'assistant', content: want.text },
      { role: 'user', content: 'Make the header blue.' },
    ]);
    const got = await faulty.generate(refine);
    assert.ok(got.stats!.reusedTokens > 0);
    assert.deepEqual(got.tokenIds, (await plain.generate(refine)).tokenIds);
  });

  it('refuses a verification run of fewer than 2 or more than 64 tokens', async () => {
    for (const verifyRows of [1, 65]) {
      await assert.rejects(
        loadModel(join(dir, 'model'), {
          cacheDir: join(dir, 'onnx'),
          device: 'webgpu',
          graphCapture: { capacity: CAPACITY, verifyRows },
        }),
        (error) => isEngineError(error, 'bad_request') && /verification run/.test(error.message),
      );
    }
  });

  it('reports its cache capacity as the context length and refuses more', async () => {
    assert.equal(captured.info.contextLength, CAPACITY);
    await assert.rejects(
      captured.generate({ ...request([ask]), maxNewTokens: CAPACITY }),
      /exceeds the context length of 384/,
    );
  });
});
