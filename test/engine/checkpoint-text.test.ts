import { strict as assert } from 'node:assert';
import { cpSync, mkdtempSync, readFileSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadChatCheckpoint } from '../../server/engine/chat/chat-checkpoint';
import { isEngineError } from '../../server/engine/errors';
import { goldenCases, TINY_MODEL_DIR } from './golden-fixture';

/** A copy of the tiny checkpoint's small files (weights are not needed here). */
function checkpointCopy(): string {
  const dir = mkdtempSync(join(tmpdir(), 'd2c-ckpt-'));
  for (const name of [
    'config.json',
    'tokenizer.json',
    'tokenizer_config.json',
    'chat_template.jinja',
    'preprocessor_config.json',
    'processor_config.json',
    'generation_config.json',
  ]) {
    cpSync(join(TINY_MODEL_DIR, name), join(dir, name));
  }
  return dir;
}

const editJson = (path: string, edit: (json: Record<string, unknown>) => void): void => {
  const json = JSON.parse(readFileSync(path, 'utf8'));
  edit(json);
  writeFileSync(path, JSON.stringify(json));
};

describe('checkpoint text side (tokenizer, template, processor and generation configs)', function () {
  this.timeout(60000);
  let dir: string;
  beforeEach(() => {
    dir = checkpointCopy();
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('reads the tiny checkpoint: eos falls back to <|im_end|> and <|endoftext|>', () => {
    const checkpoint = loadChatCheckpoint(dir);
    assert.deepEqual(checkpoint.generation.eosTokenIds, [151645, 151643]);
    assert.equal(checkpoint.generation.doSample, false);
    assert.deepEqual(
      { ...checkpoint.image },
      {
        patchSize: 16,
        mergeSize: 2,
        imageMean: [0.5, 0.5, 0.5],
        imageStd: [0.5, 0.5, 0.5],
        rescaleFactor: 0.00392156862745098,
        minPixels: 65536,
        maxPixels: 16777216,
      },
    );
  });

  it('takes eos ids and sampling defaults from generation_config.json', () => {
    writeFileSync(
      join(dir, 'generation_config.json'),
      JSON.stringify({
        eos_token_id: [151645, 151643],
        do_sample: true,
        temperature: 0.7,
        top_k: 20,
        top_p: 0.8,
        repetition_penalty: 1.05,
      }),
    );
    const { generation } = loadChatCheckpoint(dir);
    assert.deepEqual(generation, {
      eosTokenIds: [151645, 151643],
      doSample: true,
      temperature: 0.7,
      topK: 20,
      topP: 0.8,
      repetitionPenalty: 1.05,
      maxNewTokens: undefined,
    });
  });

  it('falls back to processor_config.json (nested) and min/max_pixels', () => {
    unlinkSync(join(dir, 'preprocessor_config.json'));
    editJson(join(dir, 'processor_config.json'), (json) => {
      const image = json.image_processor as Record<string, unknown>;
      delete image.size;
      image.min_pixels = 1024;
      image.max_pixels = 4096;
    });
    const { image } = loadChatCheckpoint(dir);
    assert.equal(image.minPixels, 1024);
    assert.equal(image.maxPixels, 4096);
  });

  it('lets min_pixels/max_pixels override size, as transformers does', () => {
    editJson(join(dir, 'preprocessor_config.json'), (json) => {
      json.min_pixels = 4096;
      json.max_pixels = 1_003_520;
    });
    const { image } = loadChatCheckpoint(dir);
    assert.equal(image.minPixels, 4096);
    assert.equal(image.maxPixels, 1_003_520);
  });

  it('finds the chat template in chat_template.json or tokenizer_config.json', () => {
    const template = readFileSync(join(dir, 'chat_template.jinja'), 'utf8');
    const golden = goldenCases().find((c) => c.name === 'text_only')!;
    const render = () =>
      loadChatCheckpoint(dir).template.render([
        { role: 'user', content: 'Write a button in HTML.' },
      ]);
    unlinkSync(join(dir, 'chat_template.jinja'));
    writeFileSync(join(dir, 'chat_template.json'), JSON.stringify({ chat_template: template }));
    assert.equal(render(), golden.prompt);
    unlinkSync(join(dir, 'chat_template.json'));
    editJson(join(dir, 'tokenizer_config.json'), (json) => (json.chat_template = template));
    assert.equal(render(), golden.prompt);
  });

  it('names a missing tokenizer.json', () => {
    unlinkSync(join(dir, 'tokenizer.json'));
    assert.throws(
      () => loadChatCheckpoint(dir),
      (e) => isEngineError(e, 'model_not_found') && /tokenizer\.json is missing/.test(e.message),
    );
  });

  it('names a corrupt tokenizer.json', () => {
    writeFileSync(join(dir, 'tokenizer.json'), '{"model": ');
    assert.throws(
      () => loadChatCheckpoint(dir),
      (e) => isEngineError(e, 'bad_checkpoint') && /tokenizer\.json/.test(e.message),
    );
  });

  it('refuses a checkpoint without any chat template', () => {
    unlinkSync(join(dir, 'chat_template.jinja'));
    assert.throws(
      () => loadChatCheckpoint(dir),
      (e) => isEngineError(e, 'model_not_found') && /chat template/.test(e.message),
    );
  });

  it('refuses a model that is not Qwen3-VL', () => {
    editJson(join(dir, 'config.json'), (json) => (json.model_type = 'llama'));
    assert.throws(
      () => loadChatCheckpoint(dir),
      (e) => isEngineError(e, 'bad_checkpoint') && /model_type is "llama"/.test(e.message),
    );
  });

  it('refuses a directory that does not exist', () => {
    assert.throws(
      () => loadChatCheckpoint(join(dir, 'nope')),
      (e) => isEngineError(e, 'model_not_found') && /does not exist/.test(e.message),
    );
  });
});
