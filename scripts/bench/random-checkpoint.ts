/**
 * The checkpoint bench:engine measures by default: the real Qwen3-VL-2B layout
 * (test/fixtures/qwen3vl_2b_layout.json) with random weights, generated once into a folder, with
 * the real Qwen tokenizer, template and processor settings from the test fixture.
 */
import {
  copyFileSync,
  existsSync,
  mkdirSync,
  readFileSync,
  renameSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import { parseModelConfig, type Qwen3VLConfig } from '../../server/engine/checkpoint/config';
import { writeSafetensors } from '../../server/engine/checkpoint/safetensors-writer';

const HOST_FILES = [
  'tokenizer.json',
  'tokenizer_config.json',
  'chat_template.jinja',
  'preprocessor_config.json',
  'processor_config.json',
  'generation_config.json',
];

/** The random 2B checkpoint in `modelDir` (generated on first use); `root`: the repository. */
export function randomCheckpoint(
  root: string,
  modelDir: string,
  log: (s: string) => void,
): Qwen3VLConfig {
  const config = ensureWeights(root, modelDir, log);
  ensureHostFiles(root, modelDir);
  return config;
}

/** The 2B layout with random weights: uniform(±1/sqrt(fan_in)) for matrices, ~1 for norms. */
function ensureWeights(root: string, modelDir: string, log: (s: string) => void): Qwen3VLConfig {
  const layout = JSON.parse(
    readFileSync(join(root, 'test', 'fixtures', 'qwen3vl_2b_layout.json'), 'utf8'),
  ) as { config: Record<string, unknown>; tensors: Record<string, number[]> };
  const rawConfig = { ...layout.config, model_type: 'qwen3_vl' };
  const config = parseModelConfig(rawConfig, 'qwen3vl_2b_layout.json');
  const file = join(modelDir, 'model.safetensors');
  if (existsSync(file) && existsSync(join(modelDir, 'config.json'))) return config;
  mkdirSync(modelDir, { recursive: true });
  const started = Date.now();
  log('generating a random Qwen3-VL-2B-sized checkpoint (bf16, once) ...');
  let seed = 0x9e3779b9;
  const random = () => {
    // xorshift32: fast and deterministic; quality is irrelevant for speed measurements.
    seed ^= seed << 13;
    seed ^= seed >>> 17;
    seed ^= seed << 5;
    return (seed >>> 0) / 2 ** 32;
  };
  const specs = Object.entries(layout.tensors).map(([name, shape]) => ({ name, shape }));
  writeSafetensors(`${file}.partial`, specs, 'BF16', ({ name, shape }, out) => {
    const isNorm = /norm|layernorm/.test(name) && name.endsWith('.weight');
    if (isNorm) for (let i = 0; i < out.length; i++) out[i] = 0.9 + 0.2 * random();
    else {
      const scale = 1 / Math.sqrt(shape.length > 1 ? shape.slice(1).reduce((a, b) => a * b) : 64);
      for (let i = 0; i < out.length; i++) out[i] = (2 * random() - 1) * scale;
    }
  });
  renameSync(`${file}.partial`, file);
  writeFileSync(join(modelDir, 'config.json'), JSON.stringify(rawConfig, null, 2));
  log(
    `  ${(statSync(file).size / 1e9).toFixed(2)} GB in ${((Date.now() - started) / 1000).toFixed(0)} s`,
  );
  return config;
}

/** The tokenizer, template and processor settings (the real Qwen ones, from the test fixture). */
function ensureHostFiles(root: string, modelDir: string): void {
  const from = join(root, 'test', 'fixtures', 'qwen3vl-tiny', 'model');
  for (const file of HOST_FILES) {
    if (!existsSync(join(modelDir, file))) copyFileSync(join(from, file), join(modelDir, file));
  }
}
