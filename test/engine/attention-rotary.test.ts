/**
 * MRoPE inside GroupQueryAttention (GPU builds whose head size its rotary takes) computes what
 * the RotaryEmbedding-before-attention form computes, over prompts with distinct t/h/w
 * positions, steps, verification runs and truncation; on the CPU (fp32, unfused) and on
 * WebGPU (int4, where onnxruntime fuses each layer's norm+QKV, q/k norm+rotary into attention,
 * and norm+gate/up+SiLU, with the cache in padded GPU buffers). The golden fixture's head size
 * (8) keeps the other form, so a random model with 16-wide heads stands in here.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import type { TextDecoder } from '../../server/engine/contracts';
import { buildGraphs } from '../../server/engine/onnx/build-graphs';
import {
  type KvCache,
  HandoverKvCache,
  InPlaceKvCache,
} from '../../server/engine/runtime/kv-cache';
import { createKvPadder, type KvPadder } from '../../server/engine/runtime/kv-padder';
import { kvCacheOnDevice } from '../../server/engine/runtime/load-model';
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

const prompt = GRID_PROMPT;
const nextPosition = GRID_PROMPT_NEXT_POSITION;

/** Every run's logits over one script: prefill, steps, a verification run, truncation, steps. */
async function script(decoder: TextDecoder): Promise<Float32Array[]> {
  const out = [Float32Array.from(await decoder.prefill(prompt))];
  let position = nextPosition;
  for (const token of [21, 22, 23])
    out.push(Float32Array.from(await decoder.step(token, position++)));
  const rows = await decoder.extend([30, 31, 32, 33], position);
  out.push(...rows.map((row) => Float32Array.from(row)));
  decoder.truncate(decoder.pastLength - 2);
  position += 2;
  for (const token of [50, 51]) out.push(Float32Array.from(await decoder.step(token, position++)));
  return out;
}

describe('MRoPE inside GroupQueryAttention', function () {
  this.timeout(300_000);
  const scratch = new ScratchSessions('d2c-rotary-');

  function build(precision: 'fp32' | 'int4', rotaryInAttention: boolean): string {
    const dir = scratch.dir();
    buildGraphs(config, randomSource(config), precision, {
      outDir: dir,
      target: 'gpu',
      rotaryInAttention,
    });
    return dir;
  }

  const open = (dir: string, options: ort.InferenceSession.SessionOptions = {}) =>
    scratch.open(join(dir, 'decoder.onnx'), options);

  after(() => scratch.release());

  it('takes the rotary_pads input only where it applies', async () => {
    const inside = await open(build('fp32', true));
    const before = await open(build('fp32', false));
    assert.ok(inside.inputNames.includes('rotary_pads'));
    assert.ok(!before.inputNames.includes('rotary_pads'));
    // Reused below: the GPU build on the CPU, in-place cache growing from 4 rows.
    const cpu = (session: ort.InferenceSession) =>
      new OnnxTextDecoder(session, config, new InPlaceKvCache(config.text, 'float32', 4));
    const [got, want] = [await script(cpu(inside)), await script(cpu(before))];
    assert.equal(got.length, want.length);
    for (let i = 0; i < want.length; i++) {
      assert.ok(maxAbsDiff(got[i], want[i]) < 1e-4, `run ${i}: ${maxAbsDiff(got[i], want[i])}`);
    }
  });

  describe('on WebGPU, int4, fused', function () {
    let padder: KvPadder;
    let insideDir: string;
    before(async function () {
      await requireWebGpu(this);
      padder = await createKvPadder(config.text, 'float16', { executionProviders: ['webgpu'] });
      insideDir = build('int4', true);
    });
    after(async () => padder?.release());

    const webgpu = (dir: string, extra: ort.InferenceSession.SessionOptions = {}) =>
      open(dir, {
        executionProviders: ['webgpu'],
        preferredOutputLocation: kvCacheOnDevice(config.text.numLayers),
        ...extra,
      });

    it("fuses each layer into onnxruntime's norm+QKV, attention with q/k norm, and MLP kernels", async () => {
      const optimized = join(insideDir, 'optimized.onnx');
      await webgpu(insideDir, { optimizedModelFilePath: optimized });
      const graph = readFileSync(optimized).toString('latin1');
      for (const op of ['MatMulNBitsQkv', 'MatMulNBitsMlp', 'qk_norm_epsilon']) {
        assert.ok(graph.includes(op), `${op} missing from the optimised graph`);
      }
      for (const op of ['RotaryEmbedding', 'QuickGelu', 'Split']) {
        assert.ok(!graph.includes(op), `${op} left in the optimised graph`);
      }
    });

    it('matches the unfused RotaryEmbedding form, cache padded on the device', async () => {
      const cache = (): KvCache => new HandoverKvCache(config.text, 'float16', padder, 0);
      const inside = new OnnxTextDecoder(await webgpu(insideDir), config, cache());
      const before = new OnnxTextDecoder(await webgpu(build('int4', false)), config, cache());
      const [got, want] = [await script(inside), await script(before)];
      for (let i = 0; i < want.length; i++) {
        const scale = want[i].reduce((m, v) => Math.max(m, Math.abs(v)), 0);
        const diff = maxAbsDiff(got[i], want[i]);
        assert.ok(diff < 2e-2 * scale, `run ${i}: ${diff} (logits up to ${scale})`);
        assert.equal(argmax(got[i]), argmax(want[i]), `run ${i}: best token`);
      }
    });
  });
});
