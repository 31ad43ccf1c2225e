/**
 * The ONNX vision tower against transformers: golden pixel_values in, image embeddings and every
 * DeepStack feature out, within 1e-3 (fp32, CPU); the int4 builds' towers (8-bit linears: per
 * channel on the CPU, blocks of 32 with fp16 activations for GPUs) by cosine. CPU builds run
 * the tower in stages, a run each: the same features as one run, and a stop between two
 * stages, after which the same image goes on from where it stopped.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { readModelConfig } from '../../server/engine/checkpoint/config';
import type { GraphTarget, LoadedModel, Precision } from '../../server/engine/contracts';
import { isEngineError } from '../../server/engine/errors';
import { cpuVisionStageCount } from '../../server/engine/onnx/build-graphs';
import { VISION_INPUTS, visionStages } from '../../server/engine/onnx/vision-graph';
import { loadModel } from '../../server/engine/runtime/load-model';
import { ensureModelBuild } from '../../server/engine/runtime/model-build';
import { OnnxVisionEncoder } from '../../server/engine/runtime/vision-encoder';
import { linspaceF32, positionTaps } from '../../server/engine/runtime/vision-tables';
import { TINY_MODEL, cosine, golden, goldenPixels, maxAbsDiff, readF32 } from './golden-tensors';

/**
 * The tiny model's build in `precision` for `target` (default the CPU's), run on the CPU,
 * loaded before the suite's tests, gone after.
 */
function tinyModelOnCpu(precision: Precision, target?: GraphTarget): () => LoadedModel {
  let cacheDir: string;
  let model: LoadedModel | undefined;
  before(async () => {
    cacheDir = mkdtempSync(join(tmpdir(), `d2c-vision-${precision}-`));
    model = await loadModel(TINY_MODEL, { cacheDir, precision, device: 'cpu', target });
  });
  after(async () => {
    await model?.dispose();
    rmSync(cacheDir, { recursive: true, force: true });
  });
  return () => model!;
}

describe('vision tower (fp32, CPU) vs transformers', () => {
  const loaded = tinyModelOnCpu('fp32');

  for (const c of golden.cases.filter((x) => x.pixel_values)) {
    it(`${c.name}: image_embeds and DeepStack features match`, async () => {
      const grid = c.image_grid_thw![0];
      const out = await loaded().vision.encode(goldenPixels(c), grid);
      assert.equal(out.tokens, c.image_embeds!.shape[0]);
      const errors = [
        maxAbsDiff(out.imageEmbeds, readF32(c.image_embeds!)),
        ...c.deepstack_embeds!.map((ref, i) => maxAbsDiff(out.deepstack[i], readF32(ref))),
      ];
      console.log(
        `      ${c.name} grid ${grid}: max |diff| embeds/deepstack ${errors.map((e) => e.toExponential(2)).join(' ')}`,
      );
      for (const e of errors) assert.ok(e < 1e-3, `max abs diff ${e}`);
    });
  }

  it('rejects pixel values that do not fit the grid', async () => {
    await assert.rejects(loaded().vision.encode(new Float32Array(10), [1, 2, 2]), /pixel_values/);
    await assert.rejects(loaded().vision.encode(new Float32Array(0), [1, 3, 2]), /multiples of 2/);
  });
});

for (const { target, label } of [
  { target: 'cpu', label: 'CPU int4 build (8-bit channels)' },
  { target: 'gpu', label: 'GPU int4 build (8-bit blocks, fp16)' },
] as const) {
  describe(`vision tower of the ${label} vs transformers`, () => {
    const loaded = tinyModelOnCpu('int4', target);

    for (const c of golden.cases.filter((x) => x.pixel_values)) {
      it(`${c.name}: image_embeds and DeepStack features within cosine 0.999`, async () => {
        const out = await loaded().vision.encode(goldenPixels(c), c.image_grid_thw![0]);
        const pairs = [
          [out.imageEmbeds, readF32(c.image_embeds!)],
          ...c.deepstack_embeds!.map((ref, i) => [out.deepstack[i], readF32(ref)]),
        ];
        const cosines = pairs.map(([ours, ref]) => cosine(ours, ref));
        const errors = pairs.map(([ours, ref]) => maxAbsDiff(ours, ref));
        console.log(
          `      ${c.name}: cosine embeds/deepstack ${cosines.map((v) => v.toFixed(6)).join(' ')}, max |diff| ${errors.map((e) => e.toExponential(2)).join(' ')}`,
        );
        for (const v of cosines) assert.ok(v > 0.999, `cosine ${v}`);
        // Not the fp32 tower: the 8-bit linears leave a visible difference.
        assert.ok(Math.max(...errors) > 1e-5, 'the int4 build ran the fp32 vision tower');
      });
    }
  });
}

describe('vision tower in stages (CPU builds)', () => {
  const config = readModelConfig(TINY_MODEL);
  const c = golden.cases.find((x) => x.pixel_values)!;
  const grid = c.image_grid_thw![0];
  const pixels = goldenPixels(c);
  let cacheDir: string;
  /** The fp32 tower: the CPU build's, in stages, and the GPU build's, one run. */
  let staged: string;
  let whole: string;
  const sessions: ort.InferenceSession[] = [];
  /** The stages run, in order, and the stage after whose run a stop comes (if any). */
  let ran: number[];
  let stopAfterStage: { stage: number; stop: AbortController } | undefined;

  before(() => {
    cacheDir = mkdtempSync(join(tmpdir(), 'd2c-vision-stages-'));
    staged = ensureModelBuild(TINY_MODEL, { cacheDir, precision: 'fp32' }).build.vision;
    whole = ensureModelBuild(TINY_MODEL, { cacheDir, precision: 'fp32', target: 'gpu' }).build
      .vision;
  });
  after(async () => {
    await Promise.all(sessions.map((session) => session.release()));
    rmSync(cacheDir, { recursive: true, force: true });
  });

  /** An encoder over `path` whose runs are recorded, and stopped as stopAfterStage says. */
  async function encoder(path: string): Promise<OnnxVisionEncoder> {
    const session = await ort.InferenceSession.create(path);
    sessions.push(session);
    ran = [];
    const recorded = new Proxy(session, {
      get(target, property) {
        if (property !== 'run') return Reflect.get(target, property);
        return async (feeds: ort.InferenceSession.FeedsType) => {
          const result = await target.run(feeds);
          const stage = Number(feeds[VISION_INPUTS.stage]?.data[0] ?? 0);
          ran.push(stage);
          // From the event loop, as a closed socket's abort comes.
          if (stopAfterStage?.stage === stage) setImmediate(() => stopAfterStage!.stop.abort());
          return result;
        };
      },
    });
    return new OnnxVisionEncoder(recorded, config);
  }

  it('splits the blocks evenly, at most one stage per block (CPU builds: one)', () => {
    assert.deepEqual(visionStages(24, 8)[1], { from: 3, to: 6 });
    assert.deepEqual(
      visionStages(27, 8).map((s) => s.to - s.from),
      [3, 4, 3, 4, 3, 3, 4, 3],
    );
    assert.equal(visionStages(4, 8).length, 4);
    assert.deepEqual(visionStages(24, 1), [{ from: 0, to: 24 }]);
    // CPU builds: a block a stage, for the 8B's depth too.
    const cpu = visionStages(27, cpuVisionStageCount(27));
    assert.deepEqual(
      cpu.map((s) => s.to - s.from),
      Array(27).fill(1),
    );
  });

  it('gives the features of the tower in one run', async () => {
    const [a, b] = [await encoder(staged), await encoder(whole)];
    const x = await a.encode(pixels, grid);
    ran = [];
    const y = await b.encode(pixels, grid);
    assert.deepEqual(ran, [0], 'the GPU build: one run');
    assert.equal(x.deepstack.length, y.deepstack.length);
    assert.ok(maxAbsDiff(x.imageEmbeds, y.imageEmbeds) < 1e-5);
    x.deepstack.forEach((d, i) => assert.ok(maxAbsDiff(d, y.deepstack[i]) < 1e-5, `tap ${i}`));
  });

  it('runs the tiny tower a stage per block', async () => {
    await (await encoder(staged)).encode(pixels, grid);
    assert.equal(config.vision.depth, 4);
    assert.deepEqual(ran, [0, 1, 2, 3]);
  });

  it('stops between two stages, and the same image goes on from there', async () => {
    const vision = await encoder(staged);
    const reference = await vision.encode(pixels, grid);
    ran = [];
    const stop = new AbortController();
    stopAfterStage = { stage: 1, stop };
    await assert.rejects(
      vision.encode(pixels, grid, { signal: stop.signal, key: 'mockup' }),
      (error) => isEngineError(error, 'cancelled'),
    );
    stopAfterStage = undefined;
    assert.deepEqual(ran, [0, 1], 'stopped after the second stage');
    const resumed = await vision.encode(pixels, grid, { key: 'mockup' });
    assert.deepEqual(ran, [0, 1, 2, 3], 'then the rest of the stages only');
    assert.deepEqual(resumed.imageEmbeds, reference.imageEmbeds);
    assert.deepEqual(resumed.deepstack, reference.deepstack);
  });

  it('starts over for the same image at another size', async () => {
    const small = golden.cases.find(
      (x) => x.pixel_values && x.image_grid_thw![0].join() !== grid.join(),
    )!;
    const vision = await encoder(staged);
    const stop = new AbortController();
    stopAfterStage = { stage: 1, stop };
    await assert.rejects(vision.encode(pixels, grid, { signal: stop.signal, key: 'mockup' }));
    stopAfterStage = undefined;
    ran = [];
    const other = await vision.encode(goldenPixels(small), small.image_grid_thw![0], {
      key: 'mockup',
    });
    assert.deepEqual(ran, [0, 1, 2, 3]);
    assert.equal(other.tokens, small.image_embeds!.shape[0]);
  });

  it('starts over for another image, or an image stopped before another ran', async () => {
    const vision = await encoder(staged);
    const stop = new AbortController();
    stopAfterStage = { stage: 0, stop };
    await assert.rejects(vision.encode(pixels, grid, { signal: stop.signal, key: 'mockup' }));
    stopAfterStage = undefined;
    await vision.encode(pixels, grid, { key: 'another' });
    assert.deepEqual(ran, [0, 0, 1, 2, 3]);
    ran = [];
    await vision.encode(pixels, grid, { key: 'mockup' });
    assert.deepEqual(ran, [0, 1, 2, 3], 'its progress went with the other image');
  });
});

describe('vision position tables', () => {
  it('linspace matches torch.linspace float32 (ends exact, symmetric steps)', () => {
    const v = linspaceF32(0, 47, 40);
    assert.equal(v[0], 0);
    assert.equal(v[39], 47);
    assert.equal(v[20], Math.fround(47 - Math.fround(19 * Math.fround(47 / 39))));
  });

  it('bilinear weights sum to one and the last row/column clamps to the table edge', () => {
    const { index, weight } = positionTaps([1, 4, 6], 64, 2);
    const n = 24;
    for (let i = 0; i < n; i++) {
      const sum = weight[i] + weight[n + i] + weight[2 * n + i] + weight[3 * n + i];
      assert.ok(Math.abs(sum - 1) < 1e-6);
    }
    // Patch 3 of the last merge window is grid (3, 5): exactly table cell (7, 7).
    assert.equal(index[n - 1], 63n);
    assert.equal(weight[n - 1], 1);
  });
});
