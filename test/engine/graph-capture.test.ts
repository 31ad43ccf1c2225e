/**
 * WebGPU graph capture of the static decode step (scripts/bench/static-step-web.ts, which the
 * GPU script's `capture` job times against the engine): on onnxruntime-web over Dawn's Node
 * binding, a captured step replayed with new tokens, positions and lengths written into its
 * buffers decodes greedily what the engine's decoder decodes on onnxruntime-node: after a
 * prompt run token by token through it, after a prompt run in one go by a second session (the
 * decoder's prompt form) bound to the same cache buffers, and pipelined (each step taking the
 * last one's token on the GPU, the host reading tokens one step behind). Guards the two
 * workarounds that make the pair work (ort-web-in-node.ts), which lean on onnxruntime-web
 * 1.30's internals. A random model with 16-wide heads (the in-place forms need
 * GroupQueryAttention's rotary).
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readModelConfig } from '../../server/engine/checkpoint/config';
import { SafetensorsCheckpoint } from '../../server/engine/checkpoint/safetensors';
import { checkpointSource } from '../../server/engine/checkpoint/weights';
import { argmax } from '../../server/engine/generation/sampling';
import { buildInPlaceDecoder } from '../../server/engine/onnx/build-graphs';
import { loadModel } from '../../server/engine/runtime/load-model';
import { type StaticGraph, decodeStaticStep } from '../../scripts/bench/static-step-web';
import { requireWebGpu } from './support/webgpu';
import { writeWideHeadCheckpoint } from './support/wide-head-model';

const PROMPT = [3, 17, 9, 40, 41, 42, 43, 44, 45, 8, 12, 5];
const STEPS = 16;

describe('WebGPU graph capture of the static decode step', function () {
  this.timeout(600_000);
  let dir: string;

  before(async function () {
    await requireWebGpu(this);
    dir = mkdtempSync(join(tmpdir(), 'd2c-capture-'));
  });
  after(() => dir && rmSync(dir, { recursive: true, force: true }));

  it("decodes, replaying one captured step, the engine's greedy tokens (int4)", async () => {
    const model = join(dir, 'model');
    writeWideHeadCheckpoint(model);
    const config = readModelConfig(model);

    const engine = await loadModel(model, {
      cacheDir: join(dir, 'onnx'),
      device: 'webgpu',
      precision: 'int4',
    });
    const positions = PROMPT.map((_, i) => i);
    const want = [
      argmax(
        await engine.decoder.prefill({
          inputIds: PROMPT,
          positionIds: [positions, positions, positions],
        }),
      ),
    ];
    for (let i = 0; i < STEPS; i++) {
      const [best] = await engine.decoder.extendTop([want[i]], PROMPT.length + i);
      want.push(best.ids[0]);
    }
    await engine.dispose();

    const source = checkpointSource(SafetensorsCheckpoint.open(model));
    const path = join(dir, 'step.onnx');
    buildInPlaceDecoder(config, source, 'int4', 64, { path, staticRows: 1 });
    const promptForm = join(dir, 'prompt.onnx');
    buildInPlaceDecoder(config, source, 'int4', 64, { path: promptForm });
    const graph: StaticGraph = {
      path,
      config,
      capacity: 64,
      rows: 1,
      cacheType: 'float16',
      capture: true,
    };
    for (const [how, options] of [
      ['the prompt token by token', {}],
      ['the prompt in one run of a second session', { promptForm }],
      ['pipelined', { promptForm, pipelined: true }],
    ] as const) {
      const got = await decodeStaticStep(graph, PROMPT, STEPS, options);
      assert.deepEqual(got.tokens, want, how);
    }
    // The tokens change along the way: the replays did not return one run's result again.
    assert.ok(new Set(want).size > 1, `the model repeats ${want[0]}: the test tells nothing`);
  });
});
