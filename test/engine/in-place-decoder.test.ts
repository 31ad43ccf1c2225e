/**
 * The decoder with its cache in place (decoder-graph.ts `inPlaceCache`), the forms WebGPU graph
 * capture needs: over a cache of fixed capacity, with the whole rotary table as input, the
 * static decode step run token by token computes the logits the decoder computes for a prompt
 * (distinct t/h/w positions, as image tokens have) and the steps after it; the prompt form
 * computes the prompt's in one run; a static run of several tokens (what speculative
 * verification would replay) computes the decoder's for each row. On the CPU in fp32, and on
 * WebGPU in int4 (fused by onnxruntime as the decoder is). A random model with 16-wide heads,
 * as in attention-rotary.test.ts (the golden fixture's heads take no rotary inside attention).
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import type { Precision } from '../../server/engine/contracts';
import { buildGraphs, buildInPlaceDecoder } from '../../server/engine/onnx/build-graphs';
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
import { ScratchSessions } from './support/scratch-sessions';
import { requireWebGpu } from './support/webgpu';
import {
  GRID_PROMPT,
  GRID_PROMPT_NEXT_POSITION,
  randomSource,
  wideHeadConfig,
} from './support/wide-head-model';

const config = wideHeadConfig();
const CAPACITY = 32;

const prompt = GRID_PROMPT;
const nextPosition = GRID_PROMPT_NEXT_POSITION;
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
 * The in-place forms' logits for the same tokens: the prompt token by token through `step`, or
 * in one run through `promptForm` when given; the generated tokens one at a time through
 * `step`; then the verification run through `verify` (a static run of as many rows). Each
 * run's presents become the next run's pasts. `device`: they stay in GPU memory.
 */
async function staticLogits(
  step: ort.InferenceSession,
  verify: ort.InferenceSession,
  device: boolean,
  promptForm?: ort.InferenceSession,
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
  /** Runs `tokens` from cache position `position` on; their logits (the last only, `extra`). */
  const run = async (
    session: ort.InferenceSession,
    tokens: number[],
    position: number,
    extra: Record<string, ort.Tensor> = {},
  ) => {
    const total = position + tokens.length;
    const result = await session.run({
      ...past,
      ...extra,
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
    return Array.from({ length: logits.length / vocab }, (_, i) =>
      logits.slice(i * vocab, (i + 1) * vocab),
    );
  };
  const out: Float32Array[] = [];
  const n = prompt.inputIds.length;
  if (promptForm) {
    const taps = Math.max(1, config.vision.deepstackVisualIndexes.length);
    const one = new ort.Tensor('int64', BigInt64Array.of(1n), [1]);
    out.push(
      ...(await run(promptForm, prompt.inputIds, 0, {
        [DECODER_INPUTS.visual]: new ort.Tensor('float32', new Float32Array(n * t.hiddenSize), [
          1,
          n,
          t.hiddenSize,
        ]),
        [DECODER_INPUTS.deepstack]: new ort.Tensor(
          'float32',
          new Float32Array(taps * n * t.hiddenSize),
          [taps, 1, n, t.hiddenSize],
        ),
        [DECODER_INPUTS.numLogits]: one,
        [DECODER_INPUTS.returnedLogits]: one,
      })),
    );
  } else {
    for (const [position, token] of prompt.inputIds.entries()) {
      const [logits] = await run(step, [token], position);
      if (position === n - 1) out.push(logits);
    }
  }
  for (const [i, token] of generated.entries()) out.push(...(await run(step, [token], n + i)));
  const singles = [...prompt.inputIds, ...generated];
  out.push(...(await run(verify, verified, singles.length)));
  for (const tensor of Object.values(past)) if (device) tensor.dispose();
  return out;
}

describe('decoder with its cache in place (static step, verification run, prompt form)', function () {
  this.timeout(300_000);
  const scratch = new ScratchSessions('d2c-in-place-');
  const open = scratch.open.bind(scratch);

  /** The GPU build's decoder and its in-place forms (step, verification run, prompt). */
  function build(precision: Precision) {
    const dir = scratch.dir();
    const source = randomSource(config);
    buildGraphs(config, source, precision, { outDir: dir, target: 'gpu' });
    const step = join(dir, 'step.onnx');
    buildInPlaceDecoder(config, source, precision, CAPACITY, { path: step, staticRows: 1 });
    const verify = join(dir, 'verify.onnx');
    buildInPlaceDecoder(config, source, precision, CAPACITY, {
      path: verify,
      staticRows: verified.length,
    });
    const promptForm = join(dir, 'prompt.onnx');
    buildInPlaceDecoder(config, source, precision, CAPACITY, { path: promptForm });
    return { decoder: join(dir, 'decoder.onnx'), step, verify, promptForm };
  }

  after(() => scratch.release());

  it('gives the static step fixed shapes and no visual inputs', async () => {
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

  it('computes the logits the decoder computes, the prompt token by token or in one run (CPU, fp32)', async () => {
    const { decoder, step, verify, promptForm } = build('fp32');
    const cache = new InPlaceKvCache(config.text, 'float32', 4);
    const want = await decoderLogits(new OnnxTextDecoder(await open(decoder), config, cache));
    for (const form of [undefined, await open(promptForm)]) {
      const got = await staticLogits(await open(step), await open(verify), false, form);
      assert.equal(got.length, want.length);
      for (let i = 0; i < want.length; i++) {
        const diff = maxAbsDiff(got[i], want[i]);
        assert.ok(diff < 1e-4, `${form ? 'prompt form' : 'token by token'}, row ${i}: ${diff}`);
      }
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
      const { decoder, step, verify, promptForm } = build('int4');
      const webgpu = { executionProviders: ['webgpu'] };
      const onDevice = { preferredOutputLocation: kvCacheOnDevice(config.text.numLayers) };
      const cache: KvCache = new HandoverKvCache(config.text, 'float16', padder, 0);
      const want = await decoderLogits(
        new OnnxTextDecoder(await open(decoder, { ...webgpu, ...onDevice }), config, cache),
      );
      const session = (path: string) => open(path, { ...webgpu, ...onDevice });
      for (const form of [undefined, await session(promptForm)]) {
        const got = await staticLogits(await session(step), await session(verify), true, form);
        const how = form ? 'prompt form' : 'token by token';
        for (let i = 0; i < want.length; i++) {
          const scale = want[i].reduce((m, v) => Math.max(m, Math.abs(v)), 0);
          const diff = maxAbsDiff(got[i], want[i]);
          assert.ok(diff < 2e-2 * scale, `${how}, row ${i}: ${diff} (logits up to ${scale})`);
          assert.equal(argmax(got[i]), argmax(want[i]), `${how}, row ${i}: best token`);
        }
      }
    });
  });
});
