/**
 * The decoder run that verifies drafts: extend() returns, for every appended token, the logits
 * a step would have returned, and truncate() drops rejected drafts so the next run continues
 * as if they had never been run. Checked for the CPU build's host cache and, with the GPU build
 * run on the CPU, its in-place, static (WebGPU) and handed-over forms.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { readModelConfig } from '../../server/engine/checkpoint/config';
import type { LoadedModel, TextDecoder } from '../../server/engine/contracts';
import {
  HandoverKvCache,
  HostKvCache,
  InPlaceKvCache,
  StaticKvCache,
} from '../../server/engine/runtime/kv-cache';
import { loadModel } from '../../server/engine/runtime/load-model';
import { OnnxTextDecoder } from '../../server/engine/runtime/text-decoder';
import { TINY_MODEL, golden, maxAbsDiff } from './golden-tensors';

describe('decoder extend + truncate (speculative verification), CPU fp32', function () {
  this.timeout(120_000);
  let cacheDir: string;
  let model: LoadedModel;
  let session: ort.InferenceSession;
  let gpuSession: ort.InferenceSession;
  const config = readModelConfig(TINY_MODEL);

  before(async () => {
    cacheDir = mkdtempSync(join(tmpdir(), 'd2c-extend-'));
    model = await loadModel(TINY_MODEL, { cacheDir, precision: 'fp32', device: 'cpu' });
    const [build] = readdirSync(cacheDir).filter((d) => d.startsWith('fp32-'));
    session = await ort.InferenceSession.create(join(cacheDir, build, 'decoder.onnx'));
    // The GPU build (GroupQueryAttention over past/present), run here on the CPU.
    await (await loadModel(TINY_MODEL, { cacheDir, precision: 'fp32', device: 'auto' })).dispose();
    const [gpuBuild] = readdirSync(cacheDir).filter((d) => d.startsWith('gpu-fp32-'));
    gpuSession = await ort.InferenceSession.create(join(cacheDir, gpuBuild, 'decoder.onnx'));
  });
  after(async () => {
    await session?.release();
    await gpuSession?.release();
    await model?.dispose();
    rmSync(cacheDir, { recursive: true, force: true });
  });

  const c = golden.cases.find((x) => x.name === 'text_only')!;
  const delta = c.rope_deltas[0][0];
  const input = { inputIds: c.input_ids, positionIds: c.position_ids };

  /** Reference: plain steps over `tokens`, returning each step's logits. */
  async function stepped(tokens: number[]): Promise<Float32Array[]> {
    await model.decoder.prefill(input);
    const out: Float32Array[] = [];
    for (const token of tokens) {
      out.push(
        Float32Array.from(await model.decoder.step(token, model.decoder.pastLength + delta)),
      );
    }
    return out;
  }

  const decoders = (): [string, TextDecoder][] => [
    [
      'host (CPU build)',
      new OnnxTextDecoder(session, config, new HostKvCache(config.text, 'float32', 8)),
    ],
    [
      'in-place (GPU build)',
      new OnnxTextDecoder(gpuSession, config, new InPlaceKvCache(config.text, 'float32', 8)),
    ],
    [
      'static (GPU build, the WebGPU form on host buffers)',
      new OnnxTextDecoder(gpuSession, config, new StaticKvCache(config.text, 'float32', 160)),
    ],
    [
      'handed over (GPU build)',
      new OnnxTextDecoder(gpuSession, config, new HandoverKvCache(config.text, 'float32')),
    ],
  ];

  it('extend gives every position the logits a step gives', async () => {
    const tokens = c.greedy_new_tokens.slice(0, 5);
    const expected = await stepped(tokens);
    for (const [name, decoder] of decoders()) {
      await decoder.prefill(input);
      const rows = await decoder.extend(tokens, decoder.pastLength + delta);
      assert.equal(rows.length, tokens.length);
      rows.forEach((row, i) => assert.ok(maxAbsDiff(row, expected[i]) < 1e-4, `${name} row ${i}`));
      assert.equal(decoder.pastLength, c.input_ids.length + tokens.length);
      assert.deepEqual(decoder.cachedIds, [...c.input_ids, ...tokens]);
      decoder.reset();
    }
  });

  it('after truncating rejected drafts, the next runs match a cache that never saw them', async () => {
    const [t0, t1, t2, t3] = c.greedy_new_tokens;
    const expected = await stepped([t0, t1, t2, t3]);
    for (const [name, decoder] of decoders()) {
      await decoder.prefill(input);
      const base = decoder.pastLength;
      // t0 plus three drafts of which only the first (t1) is right.
      await decoder.extend([t0, t1, 7, 8], base + delta);
      decoder.truncate(base + 2);
      assert.deepEqual(decoder.cachedIds.slice(base), [t0, t1]);
      // t2 as the corrected token, then t3 as a verification run of one draft.
      const rows = await decoder.extend([t2, t3], decoder.pastLength + delta);
      assert.ok(maxAbsDiff(rows[0], expected[2]) < 1e-4, `${name} after truncation`);
      assert.ok(maxAbsDiff(rows[1], expected[3]) < 1e-4, `${name} next position`);
      decoder.truncate(base + 3);
      const step = await decoder.step(t3, decoder.pastLength + delta);
      assert.ok(maxAbsDiff(step, expected[3]) < 1e-4, `${name} step after truncation`);
      decoder.reset();
    }
  });

  it('a static cache keeps its buffers across sequences and refuses to overflow', async () => {
    const cache = new StaticKvCache(config.text, 'float32', c.input_ids.length + 4);
    const decoder = new OnnxTextDecoder(gpuSession, config, cache);
    // A longer first sequence leaves stale rows behind; the next one must not see them.
    await decoder.prefill({ inputIds: c.input_ids, positionIds: c.position_ids });
    await decoder.extend(c.greedy_new_tokens.slice(0, 4), decoder.pastLength + delta);
    decoder.reset();
    const expected = await stepped(c.greedy_new_tokens.slice(0, 2));
    await decoder.prefill(input);
    const rows = await decoder.extend(c.greedy_new_tokens.slice(0, 2), decoder.pastLength + delta);
    rows.forEach((row, i) => assert.ok(maxAbsDiff(row, expected[i]) < 1e-4, `row ${i}`));
    await assert.rejects(
      decoder.extend([1, 2, 3], decoder.pastLength + delta),
      /do not fit the decoder's \d+-position KV cache/,
    );
    cache.dispose();
  });

  it('refuses truncating beyond the cache and extending before prefill', async () => {
    const [, decoder] = decoders()[0];
    await assert.rejects(decoder.extend([1], 0), /before prefill/);
    await decoder.prefill(input);
    assert.throws(() => decoder.truncate(decoder.pastLength + 1), /cannot truncate/);
    decoder.reset();
  });
});
