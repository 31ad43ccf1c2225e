/**
 * The decoder run that verifies drafts: extend() returns, for every appended token, the logits
 * a step would have returned, and truncate() drops rejected drafts so the next run continues
 * as if they had never been run. Checked for the CPU build's host cache, the GPU build's
 * in-place and handed-over forms run on the CPU, and the handed-over form on WebGPU with the
 * cache in GPU buffers (where a WebGPU adapter exists: software Vulkan in CI). extendTop's rows
 * are the best logits of extend's.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { readModelConfig } from '../../server/engine/checkpoint/config';
import type { LoadedModel, TextDecoder } from '../../server/engine/contracts';
import { HandoverKvCache, HostKvCache, InPlaceKvCache } from '../../server/engine/runtime/kv-cache';
import { createKvPadder, type KvPadder } from '../../server/engine/runtime/kv-padder';
import { kvCacheOnDevice, loadModel } from '../../server/engine/runtime/load-model';
import { OnnxTextDecoder } from '../../server/engine/runtime/text-decoder';
import { TINY_MODEL, golden, maxAbsDiff } from './golden-tensors';
import { webgpuTestable } from './support/webgpu';

describe('decoder extend + truncate (speculative verification), CPU fp32', function () {
  this.timeout(120_000);
  let cacheDir: string;
  let model: LoadedModel;
  let session: ort.InferenceSession;
  let gpuSession: ort.InferenceSession;
  /** The GPU build on WebGPU, present_* kept in GPU buffers (undefined without an adapter). */
  let webgpuSession: ort.InferenceSession | undefined;
  /** Pads the WebGPU handed-over cache on the device, as the engine does there. */
  let padder: KvPadder | undefined;
  const config = readModelConfig(TINY_MODEL);

  before(async () => {
    cacheDir = mkdtempSync(join(tmpdir(), 'd2c-extend-'));
    model = await loadModel(TINY_MODEL, { cacheDir, precision: 'fp32', device: 'cpu' });
    const [build] = readdirSync(cacheDir).filter((d) => d.startsWith('fp32-'));
    session = await ort.InferenceSession.create(join(cacheDir, build, 'decoder.onnx'));
    // The GPU build (GroupQueryAttention over past/present), run here on the CPU.
    await (
      await loadModel(TINY_MODEL, { cacheDir, precision: 'fp32', device: 'cpu', target: 'gpu' })
    ).dispose();
    const [gpuBuild] = readdirSync(cacheDir).filter((d) => d.startsWith('gpu-fp32-'));
    gpuSession = await ort.InferenceSession.create(join(cacheDir, gpuBuild, 'decoder.onnx'));
    if (await webgpuTestable()) {
      webgpuSession = await ort.InferenceSession.create(join(cacheDir, gpuBuild, 'decoder.onnx'), {
        executionProviders: ['webgpu'],
        preferredOutputLocation: kvCacheOnDevice(config.text.numLayers),
      });
      padder = await createKvPadder(config.text, 'float32', { executionProviders: ['webgpu'] });
    }
  });
  after(async () => {
    await session?.release();
    await gpuSession?.release();
    await webgpuSession?.release();
    await padder?.release();
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

  /** [name, decoder, tolerance on logits vs the CPU build's steps] */
  const decoders = (): [string, TextDecoder, number][] => [
    [
      'host (CPU build)',
      new OnnxTextDecoder(session, config, new HostKvCache(config.text, 'float32', 8)),
      1e-4,
    ],
    [
      'in-place (GPU build)',
      new OnnxTextDecoder(gpuSession, config, new InPlaceKvCache(config.text, 'float32', 8)),
      1e-4,
    ],
    [
      'handed over (GPU build)',
      new OnnxTextDecoder(gpuSession, config, new HandoverKvCache(config.text, 'float32')),
      1e-4,
    ],
    ...(webgpuSession
      ? [
          [
            'handed over on WebGPU (GPU build, cache in GPU buffers)',
            new OnnxTextDecoder(webgpuSession, config, new HandoverKvCache(config.text, 'float32')),
            1e-3,
          ] as [string, TextDecoder, number],
          [
            'handed over on WebGPU with spare rows padded on the device',
            new OnnxTextDecoder(webgpuSession, config, paddedCache()),
            1e-3,
          ] as [string, TextDecoder, number],
          [
            'handed over on WebGPU whose padding fails (as out of GPU memory would)',
            new OnnxTextDecoder(
              webgpuSession,
              config,
              new HandoverKvCache(config.text, 'float32', failingPadder, 0),
            ),
            1e-3,
          ] as [string, TextDecoder, number],
        ]
      : []),
  ];

  /** Stands in for the GPU refusing the padded buffers. */
  const failingPadder: KvPadder = {
    pad: () => Promise.reject(new Error('out of GPU memory')),
    read: () => Promise.reject(new Error('out of GPU memory')),
    release: () => Promise.resolve(),
  };

  /** A WebGPU handed-over cache that checks, before each run, that its padding took effect. */
  function paddedCache(): HandoverKvCache {
    // Padded from the first row on (the engine waits for 1 MB tensors; the tiny model has none).
    const cache = new HandoverKvCache(config.text, 'float32', padder, 0);
    const makeRoom = cache.makeRoom.bind(cache);
    cache.makeRoom = async (rows: number) => {
      await makeRoom(rows);
      for (const length of cache.rows) assert.ok(length >= rows, `${length} rows < ${rows}`);
    };
    return cache;
  }

  it('extend gives every position the logits a step gives', async () => {
    const tokens = c.greedy_new_tokens.slice(0, 5);
    const expected = await stepped(tokens);
    for (const [name, decoder, tolerance] of decoders()) {
      await decoder.prefill(input);
      const rows = await decoder.extend(tokens, decoder.pastLength + delta);
      assert.equal(rows.length, tokens.length);
      rows.forEach((row, i) =>
        assert.ok(maxAbsDiff(row, expected[i]) < tolerance, `${name} row ${i}`),
      );
      assert.equal(decoder.pastLength, c.input_ids.length + tokens.length);
      assert.deepEqual(decoder.cachedIds, [...c.input_ids, ...tokens]);
      decoder.reset();
    }
  });

  it('after truncating rejected drafts, the next runs match a cache that never saw them', async () => {
    const [t0, t1, t2, t3] = c.greedy_new_tokens;
    const expected = await stepped([t0, t1, t2, t3]);
    for (const [name, decoder, tolerance] of decoders()) {
      await decoder.prefill(input);
      const base = decoder.pastLength;
      // t0 plus three drafts of which only the first (t1) is right.
      await decoder.extend([t0, t1, 7, 8], base + delta);
      decoder.truncate(base + 2);
      assert.deepEqual(decoder.cachedIds.slice(base), [t0, t1]);
      // t2 as the corrected token, then t3 as a verification run of one draft.
      const rows = await decoder.extend([t2, t3], decoder.pastLength + delta);
      assert.ok(maxAbsDiff(rows[0], expected[2]) < tolerance, `${name} after truncation`);
      assert.ok(maxAbsDiff(rows[1], expected[3]) < tolerance, `${name} next position`);
      decoder.truncate(base + 3);
      const step = await decoder.step(t3, decoder.pastLength + delta);
      assert.ok(maxAbsDiff(step, expected[3]) < tolerance, `${name} step after truncation`);
      decoder.reset();
    }
  });

  it("extendTop returns each row's best logits of extend, highest first, ties by lower id", async () => {
    const tokens = c.greedy_new_tokens.slice(0, 4);
    for (const [name, decoder] of decoders()) {
      assert.equal(decoder.topLogitsPerRow, 32, name);
      await decoder.prefill(input);
      const base = decoder.pastLength;
      const rows = await decoder.extend(tokens, base + delta);
      decoder.truncate(base);
      const tops = await decoder.extendTop(tokens, base + delta);
      assert.equal(decoder.pastLength, base + tokens.length);
      assert.equal(tops.length, tokens.length);
      tops.forEach((top, i) => {
        const row = rows[i];
        const expected = Array.from(row.keys())
          .sort((a, b) => row[b] - row[a] || a - b)
          .slice(0, 32);
        // The same run twice: the same rounding, so the same values and the same order.
        assert.deepEqual(top.ids, expected, `${name} row ${i} ids`);
        assert.deepEqual(
          [...top.logits],
          expected.map((id) => row[id]),
          `${name} row ${i}`,
        );
      });
      decoder.reset();
    }
  });

  it('refuses truncating beyond the cache and extending before prefill', async () => {
    const [, decoder] = decoders()[0];
    await assert.rejects(decoder.extend([1], 0), /before prefill/);
    await assert.rejects(decoder.extendTop([1], 0), /before prefill/);
    await decoder.prefill(input);
    assert.throws(() => decoder.truncate(decoder.pastLength + 1), /cannot truncate/);
    decoder.reset();
  });
});
