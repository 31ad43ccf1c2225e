/**
 * The CPU int4 build's 8-bit prefill decoder (build-graphs.ts): built only there, loaded where
 * memory allows, taking every prompt run while generated tokens stay on the int4 decoder, and as
 * close to the fp32 golden as the int4 decoder or closer.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { BuildProgress, LoadedModel } from '../../server/engine/contracts';
import { GRAPH_FILES } from '../../server/engine/onnx/build-graphs';
import { loadModel, wantPrefillDecoder } from '../../server/engine/runtime/load-model';
import { TINY_MODEL, cosine, golden, goldenPixels, maxAbsDiff, readF32 } from './golden-tensors';

describe('8-bit prefill decoder (CPU int4 builds)', () => {
  let cacheDir: string;
  const models: LoadedModel[] = [];
  const load = async (options: Parameters<typeof loadModel>[1]) => {
    const model = await loadModel(TINY_MODEL, { cacheDir, device: 'cpu', ...options });
    models.push(model);
    return model;
  };

  before(() => (cacheDir = mkdtempSync(join(tmpdir(), 'd2c-prefill-'))));
  after(async () => {
    for (const model of models) await model.dispose();
    rmSync(cacheDir, { recursive: true, force: true });
  });

  it('is built for int4 on the CPU only, its progress reported', async () => {
    const events: BuildProgress[] = [];
    await load({ precision: 'int4', onProgress: (event) => events.push(event) });
    const built = events.filter((e) => e.stage === 'build' && e.item === 'prefill decoder');
    assert.ok(built.length > 1 && built.at(-1)!.done === built.at(-1)!.total);
    assert.deepEqual(
      events.filter((e) => e.stage === 'load').map((e) => `${e.item} ${e.done}/${e.total}`),
      ['vision 0/3', 'decoder 1/3', 'decoder 2/3', 'prefill decoder 3/3'],
    );
    await load({ precision: 'fp32' });
    await load({ precision: 'int4', target: 'gpu' });
    const has = (prefix: string) => {
      const dir = readdirSync(cacheDir).find((d) => d.startsWith(prefix))!;
      return existsSync(join(cacheDir, dir, GRAPH_FILES.prefill));
    };
    assert.equal(has('int4-'), true);
    assert.equal(has('fp32-'), false);
    assert.equal(has('gpu-int4-'), false);
  });

  it('takes the prompt, closer to the golden than the int4 decoder; steps stay on int4', async () => {
    const c = golden.cases.find((x) => x.name === 'html_mockup')!;
    const [withPrefill, without] = [
      await load({ precision: 'int4', prefillDecoder: true }),
      await load({ precision: 'int4', prefillDecoder: false }),
    ];
    const visual = await withPrefill.vision.encode(goldenPixels(c), c.image_grid_thw![0]);
    const input = { inputIds: c.input_ids, positionIds: c.position_ids, visual };
    const reference = readF32(c.last_logits);
    const [a, b] = [await withPrefill.decoder.prefill(input), await without.decoder.prefill(input)];
    const [cosA, cosB] = [cosine(a, reference), cosine(b, reference)];
    console.log(
      `      prompt logits cosine to the fp32 golden: 8-bit prefill ${cosA.toFixed(5)}, int4 ${cosB.toFixed(5)}`,
    );
    assert.ok(maxAbsDiff(a, b) > 1e-3, 'both prompts ran the same graph');
    assert.ok(cosA > 0.99 && cosA >= cosB, `${cosA} vs ${cosB}`);
    // One decode step on each: the same int4 graph over caches filled by different graphs.
    const token = c.greedy_new_tokens[0];
    const position = withPrefill.decoder.pastLength + c.rope_deltas[0][0];
    const stepA = await withPrefill.decoder.step(token, position);
    const stepB = await without.decoder.step(token, position);
    assert.ok(cosine(stepA, stepB) > 0.95);
    assert.equal(withPrefill.decoder.pastLength, c.input_ids.length + 1);
  });

  it("takes a prompt's rest after a reused prefix too: the cold prompt's logits again", async () => {
    const c = golden.cases.find((x) => x.name === 'drawio_diagram')!;
    const model = await load({ precision: 'int4', prefillDecoder: true });
    const visual = await model.vision.encode(goldenPixels(c), c.image_grid_thw![0]);
    const input = { inputIds: c.input_ids, positionIds: c.position_ids, visual };
    const cold = await model.decoder.prefill(input);
    const warm = await model.decoder.prefill({ ...input, reuse: c.input_ids.length - 1 });
    // The int4 decoder would give the last row visibly different logits (the test above).
    assert.ok(maxAbsDiff(warm, cold) < 1e-3, `max |diff| ${maxAbsDiff(warm, cold)}`);
  });

  it('a prefill decoder that does not load: a warning, prompts on int4; asked for, an error', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'd2c-prefill-bad-'));
    try {
      await (await loadModel(TINY_MODEL, { cacheDir: dir, precision: 'int4' })).dispose();
      const [build] = readdirSync(dir).filter((d) => d.startsWith('int4-'));
      const graph = join(dir, build, GRAPH_FILES.prefill);
      // Same size (the cache still takes the build as complete), no longer a model.
      writeFileSync(graph, Buffer.alloc(statSync(graph).size, 0xff));
      const warnings: string[] = [];
      const model = await loadModel(TINY_MODEL, {
        cacheDir: dir,
        precision: 'int4',
        onWarning: (message) => warnings.push(message),
      });
      models.push(model);
      assert.match(warnings.join('\n'), /prefill decoder did not load .*int4 decoder/);
      const c = golden.cases.find((x) => x.name === 'text_only')!;
      const logits = await model.decoder.prefill({
        inputIds: c.input_ids,
        positionIds: c.position_ids,
      });
      assert.ok(cosine(logits, readF32(c.last_logits)) > 0.9);
      await assert.rejects(
        loadModel(TINY_MODEL, { cacheDir: dir, precision: 'int4', prefillDecoder: true }),
      );
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('is left out, with a warning that says why, when free memory is short', () => {
    const dir = mkdtempSync(join(tmpdir(), 'd2c-prefill-mem-'));
    try {
      const path = join(dir, GRAPH_FILES.prefill);
      writeFileSync(`${path}.data`, Buffer.alloc(1000));
      const warnings: string[] = [];
      const warn = (message: string) => warnings.push(message);
      assert.equal(wantPrefillDecoder(path, undefined, warn, 2000), true);
      assert.equal(wantPrefillDecoder(path, undefined, warn, 1999), false);
      assert.match(warnings.join('\n'), /prefill decoder .* left out: .* free/);
      assert.equal(wantPrefillDecoder(path, true, warn, 0), true);
      assert.equal(wantPrefillDecoder(path, false, warn, 1e12), false);
      assert.equal(warnings.length, 1);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
