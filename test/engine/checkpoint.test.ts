/**
 * Safetensors reading (single file, shards + index, bf16/fp16/fp32) and the clear errors for
 * truncated files, missing shards, wrong model_type and a checkpoint whose tensors do not fit
 * its config.
 */
import assert from 'node:assert/strict';
import {
  copyFileSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  truncateSync,
  writeFileSync,
  statSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readModelConfig } from '../../server/engine/checkpoint/config';
import { SafetensorsCheckpoint } from '../../server/engine/checkpoint/safetensors';
import { writeSafetensors } from '../../server/engine/checkpoint/safetensors-writer';
import { checkpointSource, validateWeights } from '../../server/engine/checkpoint/weights';
import { isEngineError } from '../../server/engine/errors';
import { toFloat16 } from '../../server/engine/onnx/float16';
import { loadModel } from '../../server/engine/runtime/load-model';
import { TINY_MODEL } from './golden-tensors';

const values = Float32Array.from([1, -2.5, 0.15625, 3e-3, 65504, -0, 1.5, 2]);

function rejectsWith(code: string, pattern: RegExp) {
  return (error: unknown) =>
    isEngineError(error) && error.code === code && pattern.test(error.message);
}

describe('safetensors checkpoints', () => {
  let dir: string;
  beforeEach(() => (dir = mkdtempSync(join(tmpdir(), 'd2c-st-'))));
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  for (const dtype of ['F32', 'F16', 'BF16'] as const) {
    it(`reads ${dtype} tensors as fp32`, () => {
      writeSafetensors(
        join(dir, 'model.safetensors'),
        [{ name: 'a', shape: [2, 4] }],
        dtype,
        (_, out) => out.set(values),
        toFloat16,
      );
      const got = SafetensorsCheckpoint.open(dir).readFloat32('a');
      const tolerance = dtype === 'F32' ? 0 : dtype === 'F16' ? 1e-3 : 1e-2;
      values.forEach((v, i) =>
        assert.ok(
          Math.abs(got[i] - v) <= Math.abs(v) * tolerance,
          `${dtype}[${i}] ${got[i]} vs ${v}`,
        ),
      );
    });
  }

  it('reads sharded checkpoints through model.safetensors.index.json', () => {
    writeSafetensors(
      join(dir, 'model-00001-of-00002.safetensors'),
      [{ name: 'a', shape: [8] }],
      'F32',
      (_, o) => o.set(values),
    );
    writeSafetensors(
      join(dir, 'model-00002-of-00002.safetensors'),
      [{ name: 'b', shape: [2] }],
      'F32',
      (_, o) => o.set([7, 8]),
    );
    writeFileSync(
      join(dir, 'model.safetensors.index.json'),
      JSON.stringify({
        weight_map: {
          a: 'model-00001-of-00002.safetensors',
          b: 'model-00002-of-00002.safetensors',
        },
      }),
    );
    const ckpt = SafetensorsCheckpoint.open(dir);
    assert.deepEqual([...ckpt.tensors.keys()].sort(), ['a', 'b']);
    assert.deepEqual([...ckpt.readFloat32('b')], [7, 8]);
    assert.equal(ckpt.shards.length, 2);
  });

  it('names a missing shard', () => {
    writeFileSync(
      join(dir, 'model.safetensors.index.json'),
      JSON.stringify({ weight_map: { a: 'model-00001-of-00002.safetensors' } }),
    );
    assert.throws(
      () => SafetensorsCheckpoint.open(dir),
      rejectsWith('model_not_found', /model-00001-of-00002\.safetensors.*incomplete/),
    );
  });

  it('names the file and tensor of a truncated download', () => {
    const file = join(dir, 'model.safetensors');
    writeSafetensors(
      file,
      [
        { name: 'a', shape: [8] },
        { name: 'last.weight', shape: [64] },
      ],
      'BF16',
      (_, o) => o.fill(1),
    );
    truncateSync(file, statSync(file).size - 10);
    assert.throws(
      () => SafetensorsCheckpoint.open(dir),
      rejectsWith(
        'bad_checkpoint',
        /model\.safetensors tensor last\.weight ends at byte \d+ but the file is only \d+ bytes: the file is truncated/,
      ),
    );
  });

  it('rejects a header longer than the file and a non-JSON header', () => {
    const file = join(dir, 'model.safetensors');
    const header = Buffer.alloc(8);
    header.writeBigUInt64LE(1000n);
    writeFileSync(file, Buffer.concat([header, Buffer.from('{"a":')]));
    assert.throws(
      () => SafetensorsCheckpoint.open(dir),
      rejectsWith('bad_checkpoint', /1000-byte header but the file is 13 bytes/),
    );
    header.writeBigUInt64LE(5n);
    writeFileSync(file, Buffer.concat([header, Buffer.from('{"a":')]));
    assert.throws(
      () => SafetensorsCheckpoint.open(dir),
      rejectsWith('bad_checkpoint', /not valid JSON/),
    );
  });

  it('says when there are no weights at all', () => {
    assert.throws(
      () => SafetensorsCheckpoint.open(dir),
      rejectsWith('model_not_found', /No model\.safetensors/),
    );
  });

  it('the tiny golden checkpoint fits its config exactly', () => {
    const config = readModelConfig(TINY_MODEL);
    validateWeights(
      config,
      checkpointSource(SafetensorsCheckpoint.open(TINY_MODEL)).shapes,
      'tiny',
    );
  });

  it('loadModel refuses a wrong model_type and a truncated checkpoint with clear errors', async () => {
    for (const file of ['config.json', 'model.safetensors'])
      copyFileSync(join(TINY_MODEL, file), join(dir, file));
    const config = JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8'));
    writeFileSync(join(dir, 'config.json'), JSON.stringify({ ...config, model_type: 'qwen2_vl' }));
    await assert.rejects(
      loadModel(dir, { cacheDir: join(dir, 'cache') }),
      rejectsWith('bad_checkpoint', /model_type is "qwen2_vl"/),
    );
    writeFileSync(join(dir, 'config.json'), JSON.stringify(config));
    truncateSync(join(dir, 'model.safetensors'), statSync(join(dir, 'model.safetensors')).size - 1);
    await assert.rejects(
      loadModel(dir, { cacheDir: join(dir, 'cache') }),
      rejectsWith('bad_checkpoint', /truncated/),
    );
  });

  it('loadModel names a tensor that does not fit config.json', async () => {
    copyFileSync(join(TINY_MODEL, 'model.safetensors'), join(dir, 'model.safetensors'));
    const config = JSON.parse(readFileSync(join(TINY_MODEL, 'config.json'), 'utf8'));
    config.text_config.intermediate_size = 48;
    writeFileSync(join(dir, 'config.json'), JSON.stringify(config));
    await assert.rejects(
      loadModel(dir, { cacheDir: join(dir, 'cache') }),
      rejectsWith(
        'bad_checkpoint',
        /layers\.0\.mlp\.gate_proj\.weight has shape \[64,32\], expected \[48,32\] from config\.json/,
      ),
    );
  });
});
