/**
 * fp16 and int4 builds against the fp32 transformers golden: cosine similarity of the logits
 * (printed), top-10 overlap, and the same greedy token at every step where the golden margin
 * between the best two tokens is large enough for the precision. Steps are teacher-forced with
 * the golden tokens so each step is judged on its own.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { LoadedModel, Precision } from '../../server/engine/contracts';
import { loadModel } from '../../server/engine/runtime/load-model';
import { TINY_MODEL, argmax, cosine, golden, goldenPixels, readF32, topK } from './golden-tensors';
import { requireWebGpu } from './support/webgpu';

/**
 * What each precision must achieve on the tiny random model. Its hidden size is 32, so every
 * int4 row is a single 32-value block of random weights: a harsh case (a real checkpoint's
 * int4 logits are much closer), hence the looser bounds.
 */
const EXPECT: Record<Exclude<Precision, 'fp32'>, { minCosine: number; decisiveMargin: number }> = {
  fp16: { minCosine: 0.9999, decisiveMargin: 0.05 },
  int4: { minCosine: 0.9, decisiveMargin: 1.5 },
};

// target 'gpu' builds what a GPU runs (int4 with fp16 activations and KV cache), run here on
// the CPU.
const BUILDS = [
  { precision: 'fp16', device: 'cpu', label: 'fp16' },
  { precision: 'int4', device: 'cpu', label: 'int4' },
  // GPU builds quantise without zero points (onnxruntime's WebGPU fusions need that): each
  // block gives up its offset, which on this model (every row one block of 32) flips a step
  // of margin 2.15 in small_image while the logits' cosine stays as close as the CPU build's.
  {
    precision: 'int4',
    device: 'cpu',
    target: 'gpu',
    label: 'int4 (GPU build: fp16 activations)',
    decisiveMargin: 2.5,
  },
  // WebGPU (over software Vulkan in CI) computes fp16 activations in fp16; the CPU provider runs
  // most fp16 operators in fp32 behind inserted casts, hence its closer logits.
  { precision: 'fp16', device: 'webgpu', label: 'fp16 webgpu', minCosine: 0.999 },
  { precision: 'int4', device: 'webgpu', label: 'int4 webgpu', decisiveMargin: 2.5 },
] as const;

for (const build of BUILDS) {
  const { precision, device, label } = build;
  describe(`${label} build vs fp32 golden`, () => {
    let cacheDir: string;
    let model: LoadedModel;

    before(async function () {
      if (device === 'webgpu') await requireWebGpu(this);
      cacheDir = mkdtempSync(join(tmpdir(), `d2c-${precision}-`));
      const target = 'target' in build ? build.target : undefined;
      model = await loadModel(TINY_MODEL, { cacheDir, precision, device, target });
      assert.equal(model.precision, precision);
    });
    after(async () => {
      await model?.dispose();
      rmSync(cacheDir, { recursive: true, force: true });
    });

    for (const c of golden.cases) {
      it(`${c.name}: logits close, decisive greedy tokens equal`, async () => {
        const visual = c.pixel_values
          ? await model.vision.encode(goldenPixels(c), c.image_grid_thw![0])
          : undefined;
        let logits = await model.decoder.prefill({
          inputIds: c.input_ids,
          positionIds: c.position_ids,
          visual,
        });
        const reference = readF32(c.last_logits);
        const cos = cosine(logits, reference);
        const ours = new Set(topK(logits, 10));
        const overlap = c.last_top10.ids.filter((id) => ours.has(id)).length;
        const decisiveMargin =
          'decisiveMargin' in build ? build.decisiveMargin : EXPECT[precision].decisiveMargin;
        const minCosine = 'minCosine' in build ? build.minCosine : EXPECT[precision].minCosine;
        let decisive = 0;
        let agreed = 0;
        const stepCosines: number[] = [];
        for (let step = 0; step < c.greedy_new_tokens.length; step++) {
          const expected = c.greedy_new_tokens[step];
          const ref = c.greedy_step_top10[step];
          // Cosine over the golden top-10 entries (the full vector is only stored for step 0).
          stepCosines.push(
            cosine(
              ref.ids.map((id) => logits[id]),
              ref.values,
            ),
          );
          if (argmax(logits) === expected) agreed++;
          if (c.greedy_top2_margins[step] > decisiveMargin) {
            decisive++;
            assert.equal(
              argmax(logits),
              expected,
              `step ${step} (margin ${c.greedy_top2_margins[step]})`,
            );
          }
          if (step + 1 < c.greedy_new_tokens.length) {
            logits = await model.decoder.step(
              expected,
              model.decoder.pastLength + c.rope_deltas[0][0],
            );
          }
        }
        console.log(
          `      ${label} ${c.name}: logits cosine ${cos.toFixed(7)}, top-10 overlap ${overlap}/10, greedy agreement ${agreed}/24 (${decisive} decisive steps), min step top-10 cosine ${Math.min(...stepCosines).toFixed(4)}`,
        );
        assert.ok(cos > minCosine, `cosine ${cos} <= ${minCosine}`);
      });
    }
  });
}
