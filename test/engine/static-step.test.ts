/**
 * The static decode step (decoder-graph.ts `staticStep`), the graph WebGPU graph capture can
 * replay: run token by token over a cache of fixed capacity, with the whole rotary table as
 * input, it computes the logits the decoder computes for a prompt (distinct t/h/w positions, as
 * image tokens have) and the steps after it; a static run of several tokens (what speculative
 * verification would replay) computes the decoder's logits for each. On the CPU in fp32, and on
 * WebGPU in int4 (fused
 * by onnxruntime as the decoder is). A random model with 16-wide heads, as in
 * attention-rotary.test.ts (the golden fixture's heads take no rotary inside attention).
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import type { Precision } from '../../server/engine/contracts';
import { buildGraphs, buildStaticStepDecoder } from '../../server/engine/onnx/build-graphs';
import { DECODER_INPUTS, DECODER_OUTPUTS } from '../../server/engine/onnx/decoder-graph';
import {
  HandoverKvCache,
  InPlaceKvCache,
  type KvCache,
} from '../../server/engine/runtime/kv-cache';
import { createKvPadder, type KvPadder } from '../../server/engine/runtime/kv-padder';
import { kvCacheOnDevice } from '../../server/engine/runtime/load-model';
import { MropeTables } from '../../server/engine/runtime/mrope';
import { OnnxTextDecoder } from '../../server/engine/runtime/text-decoder';
import { argmax } from '../../server/engine/generation/sampling';
import { maxAbsDiff } from './golden-tensors';
import { requireWebGpu } from './support/webgpu';
import { randomSource, wideHeadConfig } from './support/wide-head-model';

const config = wideHeadConfig();
const CAPACITY = 32;

const prompt = {
  inputIds: [3, 17, 9, 40, 41, 42, 43, 44, 45, 8, 12, 5],
  positionIds: [
    [0, 1, 2, 3, 3, 3, 3, 3, 3, 6, 7, 8],
    [0, 1, 2, 3, 3, 3, 4, 4, 4, 6, 7, 8],
    [0, 1, 2, 3, 4, 5, 3, 4, 5, 6, 7, 8],
  ] as [number[], number[], number[]],
};
const nextPosition = 9;
const generated = [21, 22, 23, 24];

/** Tokens of a verification run after the generated ones (the static run of VERIFY rows). */
const verified = [30, 31, 32];

/**
 * The decoder's logits: the prompt's last row, one per generated token, then one per row of a
 * verification run.
 */
async function decoderLogits(decoder: OnnxTextDecoder): Promise<Float32Array[]> {
  const out = [Float32Array.from(await decoder.prefill(prompt))];
  let position = nextPosition;
  for (const token of generated) {
    out.push(Float32Array.from(await decoder.step(token, position++)));
  }
  for (const row of await decoder.extend(verified, position)) out.push(Float32Array.from(row));
  return out;
}

/**
 * The static runs' logits for the same tokens: the prompt and the generated tokens one at a
 * time through `step`, then the verification run through `verify` (a static run of as many
 * rows); each run's presents become the next run's pasts. `device`: they stay in GPU memory.
 */
async function staticLogits(
  step: ort.InferenceSession,
  verify: ort.InferenceSession,
  device: boolean,
): Promise<Float32Array[]> {
  const t = config.text;
  const type = device ? 'float16' : 'float32';
  const size = t.numKvHeads * CAPACITY * t.headDim;
  const zeros = () =>
    new ort.Tensor(type, device ? new Uint16Array(size) : new Float32Array(size), [
      1,
      t.numKvHeads,
      CAPACITY,
      t.headDim,
    ]);
  const past: Record<string, ort.Tensor> = {};
  for (let l = 0; l < t.numLayers; l++) {
    past[DECODER_INPUTS.pastKey(l)] = zeros();
    past[DECODER_INPUTS.pastValue(l)] = zeros();
  }
  const table = new MropeTables(t).cacheTable(prompt.positionIds, nextPosition, CAPACITY);
  /** Runs `tokens` from cache position `position` on; their logits. */
  const run = async (session: ort.InferenceSession, tokens: number[], position: number) => {
    const total = position + tokens.length;
    const result = await session.run({
      ...past,
      [DECODER_INPUTS.ids]: new ort.Tensor('int64', BigInt64Array.from(tokens, BigInt), [
        1,
        tokens.length,
      ]),
      [DECODER_INPUTS.cos]: new ort.Tensor('float32', table.cos, [CAPACITY, t.headDim / 2]),
      [DECODER_INPUTS.sin]: new ort.Tensor('float32', table.sin, [CAPACITY, t.headDim / 2]),
      [DECODER_INPUTS.seqlens]: new ort.Tensor('int32', Int32Array.of(total - 1), [1]),
      [DECODER_INPUTS.total]: new ort.Tensor('int32', Int32Array.of(total), []),
    });
    for (const tensor of Object.values(past)) if (device) tensor.dispose();
    for (let l = 0; l < t.numLayers; l++) {
      past[DECODER_INPUTS.pastKey(l)] = result[DECODER_OUTPUTS.presentKey(l)];
      past[DECODER_INPUTS.pastValue(l)] = result[DECODER_OUTPUTS.presentValue(l)];
    }
    const logits = (await result[DECODER_OUTPUTS.logits].getData()) as Float32Array;
    const vocab = t.vocabSize;
    return tokens.map((_, i) => logits.slice(i * vocab, (i + 1) * vocab));
  };
  const singles = [...prompt.inputIds, ...generated];
  const out: Float32Array[] = [];
  for (const [position, token] of singles.entries()) {
    const [logits] = await run(step, [token], position);
    if (position >= prompt.inputIds.length - 1) out.push(logits);
  }
  out.push(...(await run(verify, verified, singles.length)));
  for (const tensor of Object.values(past)) if (device) tensor.dispose();
  return out;
}

describe('static decode step', function () {
  this.timeout(300_000);
  const dirs: string[] = [];
  const sessions: ort.InferenceSession[] = [];

  /** The GPU build's decoder, its static step and static verification run, in one directory. */
  function build(precision: Precision): { decoder: string; step: string; verify: string } {
    const dir = mkdtempSync(join(tmpdir(), 'd2c-static-step-'));
    dirs.push(dir);
    const source = randomSource(config);
    buildGraphs(config, source, precision, { outDir: dir, target: 'gpu' });
    const step = join(dir, 'step.onnx');
    buildStaticStepDecoder(config, source, precision, CAPACITY, step);
    const verify = join(dir, 'verify.onnx');
    buildStaticStepDecoder(config, source, precision, CAPACITY, verify, verified.length);
    return { decoder: join(dir, 'decoder.onnx'), step, verify };
  }

  async function open(path: string, options: ort.InferenceSession.SessionOptions = {}) {
    const session = await ort.InferenceSession.create(path, { logSeverityLevel: 3, ...options });
    sessions.push(session);
    return session;
  }

  after(async () => {
    for (const session of sessions) await session.release();
    for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
  });

  it('has fixed shapes and no visual inputs', async () => {
    const session = await open(build('fp32').step);
    const metadata = [...session.inputMetadata, ...session.outputMetadata];
    for (const entry of metadata) {
      assert.ok(entry.isTensor, entry.name);
      assert.ok(
        entry.shape.every((dim) => typeof dim === 'number'),
        `${entry.name}: ${entry.shape.join(', ')}`,
      );
    }
    for (const absent of [DECODER_INPUTS.visual, DECODER_INPUTS.deepstack, 'rotary_pads']) {
      assert.ok(!session.inputNames.includes(absent), absent);
    }
    const past = session.inputMetadata.find((m) => m.name === DECODER_INPUTS.pastKey(0));
    assert.ok(past?.isTensor);
    assert.deepEqual(past.shape, [1, config.text.numKvHeads, CAPACITY, config.text.headDim]);
  });

  it('computes, token by token and in a verification run, the logits the decoder computes (CPU, fp32)', async () => {
    const { decoder, step, verify } = build('fp32');
    const cache = new InPlaceKvCache(config.text, 'float32', 4);
    const want = await decoderLogits(new OnnxTextDecoder(await open(decoder), config, cache));
    const got = await staticLogits(await open(step), await open(verify), false);
    assert.equal(got.length, want.length);
    for (let i = 0; i < want.length; i++) {
      const diff = maxAbsDiff(got[i], want[i]);
      assert.ok(diff < 1e-4, `row ${i}: ${diff}`);
    }
  });

  describe('on WebGPU, int4', function () {
    let padder: KvPadder;
    before(async function () {
      await requireWebGpu(this);
      padder = await createKvPadder(config.text, 'float16', { executionProviders: ['webgpu'] });
    });
    after(async () => padder?.release());

    it('computes the logits the decoder computes, cache in GPU memory', async () => {
      const { decoder, step, verify } = build('int4');
      const webgpu = { executionProviders: ['webgpu'] };
      const onDevice = { preferredOutputLocation: kvCacheOnDevice(config.text.numLayers) };
      const cache: KvCache = new HandoverKvCache(config.text, 'float16', padder, 0);
      const want = await decoderLogits(
        new OnnxTextDecoder(await open(decoder, { ...webgpu, ...onDevice }), config, cache),
      );
      const got = await staticLogits(
        await open(step, { ...webgpu, ...onDevice }),
        await open(verify, { ...webgpu, ...onDevice }),
        true,
      );
      for (let i = 0; i < want.length; i++) {
        const scale = want[i].reduce((m, v) => Math.max(m, Math.abs(v)), 0);
        const diff = maxAbsDiff(got[i], want[i]);
        assert.ok(diff < 2e-2 * scale, `row ${i}: ${diff} (logits up to ${scale})`);
        assert.equal(argmax(got[i]), argmax(want[i]), `row ${i}: best token`);
      }
    });
  });
});
