/**
 * The tiny checkpoint rewritten into the layout the published Qwen/Qwen3-VL-2B/4B/8B-Instruct
 * repositories use (transformers 4.57 era): `rope_scaling` + `rope_theta` instead of
 * `rope_parameters`, weights sharded over two safetensors files with an index, the chat template
 * in `chat_template.json`, a flat `preprocessor_config.json` with `min_pixels`/`max_pixels`
 * beside `size`, a `video_preprocessor_config.json`, `added_tokens_decoder` in
 * tokenizer_config.json and the published generation_config.json. The engine must give the
 * reference's greedy tokens from it, exactly as from the transformers-5 layout.
 */
import { strict as assert } from 'node:assert';
import { cpSync, mkdtempSync, readFileSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadChatCheckpoint } from '../../server/engine/chat/chat-checkpoint';
import type { Engine } from '../../server/engine/contracts';
import { loadEngine } from '../../server/engine/engine';
import { resolveSampler } from '../../server/engine/generation/sampler-settings';
import { goldenCases, goldenMessages, TINY_MODEL_DIR } from './golden-fixture';

type Json = Record<string, any>;

const readJson = (path: string): Json => JSON.parse(readFileSync(path, 'utf8'));
const writeJson = (path: string, json: unknown) => writeFileSync(path, JSON.stringify(json));

/**
 * Splits model.safetensors into two shards (tensor bytes copied as they are) plus the index;
 * `copies` adds tensors under new names with the bytes of existing ones.
 */
function shardWeights(dir: string, copies: Record<string, string> = {}): string[] {
  const bytes = readFileSync(join(dir, 'model.safetensors'));
  const headerLength = Number(bytes.readBigUInt64LE(0));
  const header = JSON.parse(bytes.subarray(8, 8 + headerLength).toString('utf8')) as Json;
  const data = bytes.subarray(8 + headerLength);
  for (const [name, from] of Object.entries(copies)) header[name] = header[from];
  const names = Object.keys(header)
    .filter((n) => n !== '__metadata__')
    .sort();
  const half = Math.ceil(names.length / 2);
  const files = ['model-00001-of-00002.safetensors', 'model-00002-of-00002.safetensors'];
  const weightMap: Record<string, string> = {};
  files.forEach((file, shard) => {
    const shardHeader: Json = { __metadata__: { format: 'pt' } };
    const chunks: Buffer[] = [];
    let offset = 0;
    for (const name of names.slice(shard * half, (shard + 1) * half)) {
      const {
        dtype,
        shape,
        data_offsets: [begin, end],
      } = header[name];
      chunks.push(data.subarray(begin, end));
      shardHeader[name] = { dtype, shape, data_offsets: [offset, offset + end - begin] };
      offset += end - begin;
      weightMap[name] = file;
    }
    let json = JSON.stringify(shardHeader);
    json += ' '.repeat((8 - (json.length % 8)) % 8);
    const length = Buffer.alloc(8);
    length.writeBigUInt64LE(BigInt(json.length));
    writeFileSync(join(dir, file), Buffer.concat([length, Buffer.from(json), ...chunks]));
  });
  unlinkSync(join(dir, 'model.safetensors'));
  writeJson(join(dir, 'model.safetensors.index.json'), {
    metadata: {
      total_size: names.reduce(
        (n, name) => n + header[name].data_offsets[1] - header[name].data_offsets[0],
        0,
      ),
    },
    weight_map: weightMap,
  });
  return files;
}

/** A copy of the tiny checkpoint in the published Qwen3-VL repositories' layout. */
function publishedLayoutCopy(): string {
  const dir = mkdtempSync(join(tmpdir(), 'd2c-published-'));
  cpSync(TINY_MODEL_DIR, dir, { recursive: true });

  const config = readJson(join(dir, 'config.json'));
  const { rope_theta: ropeTheta, ...ropeScaling } = config.text_config.rope_parameters;
  delete config.text_config.rope_parameters;
  config.text_config.rope_scaling = ropeScaling;
  config.text_config.rope_theta = ropeTheta;
  delete config.vision_config.rope_parameters;
  config.vision_config.model_type = 'qwen3_vl';
  writeJson(join(dir, 'config.json'), config);

  shardWeights(dir);

  const template = readFileSync(join(dir, 'chat_template.jinja'), 'utf8');
  unlinkSync(join(dir, 'chat_template.jinja'));
  writeJson(join(dir, 'chat_template.json'), { chat_template: template });

  const tokenizerConfig = readJson(join(dir, 'tokenizer_config.json'));
  const addedTokens = readJson(join(dir, 'tokenizer.json')).added_tokens as Json[];
  tokenizerConfig.added_tokens_decoder = Object.fromEntries(
    addedTokens.map(({ id, ...token }) => [String(id), token]),
  );
  tokenizerConfig.additional_special_tokens = tokenizerConfig.extra_special_tokens;
  delete tokenizerConfig.extra_special_tokens;
  delete tokenizerConfig.backend;
  writeJson(join(dir, 'tokenizer_config.json'), tokenizerConfig);

  unlinkSync(join(dir, 'processor_config.json'));
  const preprocessor = readJson(join(dir, 'preprocessor_config.json'));
  preprocessor.min_pixels = preprocessor.size.shortest_edge;
  preprocessor.max_pixels = preprocessor.size.longest_edge;
  writeJson(join(dir, 'preprocessor_config.json'), preprocessor);
  writeJson(join(dir, 'video_preprocessor_config.json'), {
    size: { longest_edge: 25165824, shortest_edge: 4096 },
    patch_size: 16,
    temporal_patch_size: 2,
    merge_size: 2,
    fps: 2,
    video_processor_type: 'Qwen3VLVideoProcessor',
  });

  writeJson(join(dir, 'generation_config.json'), {
    bos_token_id: 151643,
    pad_token_id: 151643,
    do_sample: true,
    eos_token_id: [151645, 151643],
    top_k: 20,
    top_p: 0.8,
    temperature: 0.7,
    repetition_penalty: 1.0,
    transformers_version: '4.56.0',
  });
  return dir;
}

describe('the published Qwen3-VL checkpoint layout (rope_scaling, shards, chat_template.json)', function () {
  this.timeout(120000);
  let dir: string;
  let cacheDir: string;
  let engine: Engine;
  before(async () => {
    dir = publishedLayoutCopy();
    cacheDir = mkdtempSync(join(tmpdir(), 'd2c-published-cache-'));
    engine = await loadEngine({ modelDir: dir, cacheDir, device: 'cpu', precision: 'fp32' });
  });
  after(async () => {
    await engine?.dispose();
    rmSync(dir, { recursive: true, force: true });
    rmSync(cacheDir, { recursive: true, force: true });
  });

  it('reads the same settings as from the transformers-5 layout', () => {
    const published = loadChatCheckpoint(dir);
    const reference = loadChatCheckpoint(TINY_MODEL_DIR);
    assert.deepEqual(published.model, reference.model);
    assert.deepEqual(published.image, reference.image);
    assert.deepEqual(published.generation.eosTokenIds, [151645, 151643]);
  });

  it("uses generation_config.json's sampling defaults, and a request's temperature overrides", () => {
    const { generation } = loadChatCheckpoint(dir);
    assert.deepEqual(resolveSampler(undefined, generation), {
      greedy: false,
      temperature: 0.7,
      topK: 20,
      topP: 0.8,
      repetitionPenalty: 1,
    });
    assert.deepEqual(resolveSampler({ temperature: 0.2 }, generation), {
      greedy: false,
      temperature: 0.2,
      topK: 20,
      topP: 0.8,
      repetitionPenalty: 1,
    });
    assert.equal(resolveSampler({ temperature: 0 }, generation).greedy, true);
  });

  for (const golden of goldenCases()) {
    it(`${golden.name}: the reference's prompt ids and 24 greedy tokens`, async () => {
      const result = await engine.generate({
        messages: goldenMessages(golden),
        maxNewTokens: 24,
        sampling: { greedy: true },
      });
      assert.deepEqual(result.promptTokenIds, golden.input_ids);
      assert.deepEqual(result.tokenIds, golden.greedy_new_tokens);
      assert.equal(result.text, golden.greedy_text);
    });
  }
});

describe('an untied checkpoint (Qwen3-VL-8B: tie_word_embeddings false, its own lm_head.weight)', function () {
  this.timeout(120000);
  let dir: string;
  let cacheDir: string;
  let engine: Engine;
  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'd2c-untied-'));
    cpSync(TINY_MODEL_DIR, dir, { recursive: true });
    const config = readJson(join(dir, 'config.json'));
    config.tie_word_embeddings = false;
    config.text_config.tie_word_embeddings = false;
    writeJson(join(dir, 'config.json'), config);
    // The head equals the embedding, so the reference's tokens still hold, now via lm_head.
    shardWeights(dir, { 'lm_head.weight': 'model.language_model.embed_tokens.weight' });
    cacheDir = mkdtempSync(join(tmpdir(), 'd2c-untied-cache-'));
    engine = await loadEngine({ modelDir: dir, cacheDir, device: 'cpu', precision: 'fp32' });
  });
  after(async () => {
    await engine?.dispose();
    rmSync(dir, { recursive: true, force: true });
    rmSync(cacheDir, { recursive: true, force: true });
  });

  for (const golden of goldenCases().filter((c) => c.name !== 'small_image')) {
    it(`${golden.name}: the reference's 24 greedy tokens`, async () => {
      const result = await engine.generate({
        messages: goldenMessages(golden),
        maxNewTokens: 24,
        sampling: { greedy: true },
      });
      assert.deepEqual(result.tokenIds, golden.greedy_new_tokens);
    });
  }
});
