/**
 * The real Qwen3-VL-2B layout (626 tensor names and shapes, no weights) builds in every
 * precision as a dry run: graphs constructed, every tensor consumed, no weight read. A missing,
 * unexpected or mis-shaped tensor fails with an error naming it.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseModelConfig } from '../../server/engine/checkpoint/config';
import { shapeOnlySource } from '../../server/engine/checkpoint/weights';
import { isEngineError } from '../../server/engine/errors';
import { buildGraphs } from '../../server/engine/onnx/build-graphs';

const layout = JSON.parse(
  readFileSync(join(__dirname, '..', 'fixtures', 'qwen3vl_2b_layout.json'), 'utf8'),
) as { config: Record<string, unknown>; tensors: Record<string, number[]> };
const config = parseModelConfig(
  { ...layout.config, model_type: 'qwen3_vl' },
  'qwen3vl_2b_layout.json',
);

function build(tensors: Record<string, number[]>, precision: 'fp32' | 'fp16' | 'int4' = 'fp32') {
  return buildGraphs(config, shapeOnlySource(tensors), precision, { sourceName: '2b-layout' });
}

function expectBadCheckpoint(tensors: Record<string, number[]>, pattern: RegExp) {
  assert.throws(
    () => build(tensors),
    (error) => isEngineError(error, 'bad_checkpoint') && pattern.test((error as Error).message),
  );
}

describe('Qwen3-VL-2B layout (shapes only)', () => {
  it('has the published sizes', () => {
    assert.equal(Object.keys(layout.tensors).length, 626);
    assert.equal(config.text.numLayers, 28);
    assert.deepEqual(config.text.mropeSection, [24, 20, 20]);
    assert.deepEqual(config.vision.deepstackVisualIndexes, [5, 11, 17]);
  });

  for (const precision of ['fp32', 'fp16', 'int4'] as const) {
    it(`builds ${precision} graphs consuming every tensor`, () => {
      const summary = build(layout.tensors, precision);
      // lm_head.weight is the tied duplicate of embed_tokens: validated, read through the embedding.
      const unused = Object.keys(layout.tensors).filter((n) => !summary.consumed.has(n));
      assert.deepEqual(unused, config.text.tieWordEmbeddings ? ['lm_head.weight'] : []);
      const gb = (n: number) => (n / 1e9).toFixed(2);
      console.log(
        `      ${precision}: vision ${summary.nodes.vision} nodes / ${gb(summary.dataBytes.vision)} GB, decoder ${summary.nodes.decoder} nodes / ${gb(summary.dataBytes.decoder)} GB, prefill decoder ${summary.nodes.prefill} nodes / ${gb(summary.dataBytes.prefill)} GB`,
      );
      if (precision === 'fp32') {
        // Every parameter once in fp32 (the tied LM head reuses the embedding), the patch
        // embedding's kernel summed over its frames (vision-graph.ts foldFrames).
        const size = (shape: number[]) => shape.reduce((a, b) => a * b, 1);
        const kernel = size(layout.tensors['model.visual.patch_embed.proj.weight']);
        const params =
          Object.entries(layout.tensors)
            .filter(([name]) => name !== 'lm_head.weight')
            .reduce((sum, [, shape]) => sum + size(shape), 0) -
          kernel +
          kernel / config.vision.temporalPatchSize;
        const bytes = summary.dataBytes.vision + summary.dataBytes.decoder;
        assert.ok(bytes >= 4 * params && bytes < 4 * params * 1.01, `${bytes} vs ${4 * params}`);
      }
      if (precision === 'int4') {
        assert.ok(summary.dataBytes.decoder < 2.2e9, `int4 decoder ${summary.dataBytes.decoder}`);
        // The CPU build's vision linears in 8 bits: about a quarter of its fp32 1.6 GB.
        assert.ok(summary.dataBytes.vision < 0.5e9, `int4 vision ${summary.dataBytes.vision}`);
        // Its prefill decoder: 8-bit layers (1.4 GB), the int4 decoder's fp16 table and head.
        const prefill = summary.dataBytes.prefill;
        assert.ok(prefill > 2.0e9 && prefill < 2.4e9, `int4 prefill decoder ${prefill}`);
      } else {
        assert.equal(summary.dataBytes.prefill, 0);
      }
    });
  }

  it('builds a graph-capture build: vision, the prompt form and the step (weights once)', () => {
    const summary = buildGraphs(config, shapeOnlySource(layout.tensors), 'int4', {
      sourceName: '2b-layout',
      target: 'gpu',
      capture: { capacity: 4096 },
    });
    assert.equal(summary.nodes.decoder, 0);
    assert.ok(summary.nodes.promptForm > 0 && summary.nodes.step > 0);
    // The step reads its weights from the prompt form's file: nothing of its own to write.
    assert.equal(summary.dataBytes.step, 0);
    assert.ok(summary.dataBytes.promptForm < 2.2e9, `int4 decoder ${summary.dataBytes.promptForm}`);
    assert.equal(summary.nodes.verify, 0);
    const withVerify = buildGraphs(config, shapeOnlySource(layout.tensors), 'int4', {
      target: 'gpu',
      capture: { capacity: 4096, verifyRows: 17 },
    });
    assert.ok(withVerify.nodes.verify > 0);
    assert.equal(withVerify.dataBytes.verify, 0);
    assert.throws(
      () =>
        buildGraphs(config, shapeOnlySource(layout.tensors), 'int4', {
          capture: { capacity: 4096 },
        }),
      (error) => isEngineError(error, 'bad_request') && /GPU build/.test((error as Error).message),
    );
  });

  it('names a missing tensor', () => {
    const { ['model.language_model.layers.27.mlp.down_proj.weight']: _, ...rest } = layout.tensors;
    expectBadCheckpoint(
      rest,
      /missing tensor model\.language_model\.layers\.27\.mlp\.down_proj\.weight/,
    );
  });

  it('names an unexpected tensor', () => {
    expectBadCheckpoint(
      { ...layout.tensors, 'model.visual.blocks.24.norm1.weight': [1024] },
      /unexpected tensor model\.visual\.blocks\.24\.norm1\.weight/,
    );
  });

  it('names a mis-shaped tensor', () => {
    expectBadCheckpoint(
      { ...layout.tensors, 'model.language_model.layers.3.self_attn.k_proj.weight': [2048, 2048] },
      /model\.language_model\.layers\.3\.self_attn\.k_proj\.weight has shape \[2048,2048\], expected \[1024,2048\]/,
    );
  });
});
