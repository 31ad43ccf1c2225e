/**
 * MatMulNBits accuracy_level: 4 (int8 activations inside the kernel, the fast path on CPU and
 * WebGPU) is what int4 builds use. This prints its logits agreement with the fp32 golden next to
 * level 0 (activations kept in float) and checks level 4 stays within the int4 bound.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { readModelConfig } from '../../server/engine/checkpoint/config';
import { SafetensorsCheckpoint } from '../../server/engine/checkpoint/safetensors';
import { checkpointSource } from '../../server/engine/checkpoint/weights';
import { buildGraphs } from '../../server/engine/onnx/build-graphs';
import { HostKvCache } from '../../server/engine/runtime/kv-cache';
import { OnnxTextDecoder } from '../../server/engine/runtime/text-decoder';
import { TINY_MODEL, cosine, golden, readF32 } from './golden-tensors';

describe('int4 MatMulNBits accuracy_level vs fp32 golden (CPU)', function () {
  this.timeout(120_000);
  const config = readModelConfig(TINY_MODEL);
  const dirs: string[] = [];
  after(() => dirs.forEach((dir) => rmSync(dir, { recursive: true, force: true })));

  /** Last-position logits cosine for every text-only golden case at one accuracy level. */
  async function agreement(level: number): Promise<number[]> {
    const dir = mkdtempSync(join(tmpdir(), `d2c-acc${level}-`));
    dirs.push(dir);
    const checkpoint = SafetensorsCheckpoint.open(TINY_MODEL);
    buildGraphs(config, checkpointSource(checkpoint), 'int4', {
      outDir: dir,
      int4AccuracyLevel: level,
    });
    const session = await ort.InferenceSession.create(join(dir, 'decoder.onnx'));
    try {
      const decoder = new OnnxTextDecoder(session, config, new HostKvCache(config.text, 'float32'));
      const out: number[] = [];
      for (const c of golden.cases.filter((x) => !x.pixel_values)) {
        const logits = await decoder.prefill({
          inputIds: c.input_ids,
          positionIds: c.position_ids,
        });
        out.push(cosine(logits, readF32(c.last_logits)));
      }
      return out;
    } finally {
      await session.release();
    }
  }

  it('level 4 (the default) agrees within the int4 bound; level 0 printed beside it', async () => {
    const fast = await agreement(4);
    const exact = await agreement(0);
    console.log(
      `      logits cosine vs fp32: accuracy_level 4 ${fast.map((x) => x.toFixed(6))}, level 0 ${exact.map((x) => x.toFixed(6))}`,
    );
    for (const c of fast) assert.ok(c > 0.9, `cosine ${c}`);
  });
});
