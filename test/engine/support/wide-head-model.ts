/**
 * A tiny random Qwen3-VL whose text head size (16) takes GroupQueryAttention's own rotary, which
 * the golden fixture's (8) does not: the tiny config with wider heads and random weights
 * (deterministic), built into a directory of ONNX graphs like the engine's build cache holds.
 */
import { cpSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Qwen3VLConfig } from '../../../server/engine/checkpoint/config';
import { writeSafetensors } from '../../../server/engine/checkpoint/safetensors-writer';
import { readModelConfig } from '../../../server/engine/checkpoint/config';
import { type WeightSource, expectedTensors } from '../../../server/engine/checkpoint/weights';
import { TINY_MODEL } from '../golden-tensors';

export function wideHeadConfig(): Qwen3VLConfig {
  const tiny = readModelConfig(TINY_MODEL);
  return { ...tiny, text: { ...tiny.text, headDim: 16, mropeSection: [4, 2, 2] } };
}

/** Norm weights near 1, matrices uniform in ±1/sqrt(fan-in), seeded per tensor name. */
export function randomSource(config: Qwen3VLConfig): WeightSource {
  const shapes = expectedTensors(config);
  return {
    shapes,
    readFloat32(name) {
      const shape = shapes.get(name)!;
      let seed = 0x9e3779b9;
      for (const c of name) seed = Math.imul(seed ^ c.charCodeAt(0), 0x01000193) >>> 0 || 1;
      const random = () => {
        seed ^= seed << 13;
        seed ^= seed >>> 17;
        seed ^= seed << 5;
        return (seed >>> 0) / 2 ** 32;
      };
      const size = shape.reduce((a, b) => a * b, 1);
      const out = new Float32Array(size);
      if (/norm/.test(name) && name.endsWith('.weight')) {
        for (let i = 0; i < size; i++) out[i] = 0.8 + 0.4 * random();
      } else {
        const scale = 1 / Math.sqrt(shape.length > 1 ? size / shape[0] : 64);
        for (let i = 0; i < size; i++) out[i] = (2 * random() - 1) * scale;
      }
      return out;
    },
  };
}

/**
 * The model as a checkpoint directory (the tiny fixture's files, config.json with the wider
 * heads, model.safetensors with the random weights), for what reads checkpoints from disk.
 */
export function writeWideHeadCheckpoint(dir: string): void {
  cpSync(TINY_MODEL, dir, { recursive: true });
  const json = JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8'));
  const config = wideHeadConfig();
  json.text_config.head_dim = config.text.headDim;
  json.text_config.rope_parameters.mrope_section = config.text.mropeSection;
  writeFileSync(join(dir, 'config.json'), JSON.stringify(json, null, 2));
  const source = randomSource(config);
  const tensors = [...source.shapes].map(([name, shape]) => ({ name, shape: [...shape] }));
  writeSafetensors(join(dir, 'model.safetensors'), tensors, 'F32', (spec, out) =>
    out.set(source.readFloat32(spec.name)),
  );
}

/** A prompt whose middle tokens sit on a 2x3 grid (h and w differ from t), as image tokens do. */
export const GRID_PROMPT = {
  inputIds: [3, 17, 9, 40, 41, 42, 43, 44, 45, 8, 12, 5],
  positionIds: [
    [0, 1, 2, 3, 3, 3, 3, 3, 3, 6, 7, 8],
    [0, 1, 2, 3, 3, 3, 4, 4, 4, 6, 7, 8],
    [0, 1, 2, 3, 4, 5, 3, 4, 5, 6, 7, 8],
  ] as [number[], number[], number[]],
};

/** The position of the first token after GRID_PROMPT. */
export const GRID_PROMPT_NEXT_POSITION = 9;
