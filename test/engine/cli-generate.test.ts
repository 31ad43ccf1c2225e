import { strict as assert } from 'node:assert';
import { execFile, execFileSync } from 'node:child_process';
import { cpSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import sharp from 'sharp';
import { goldenCases, TINY_IMAGES_DIR, TINY_MODEL_DIR } from './golden-fixture';

const ROOT = resolve(__dirname, '..', '..');
const CLI = join(ROOT, 'dist', 'cli.js');

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

describe('design-to-code generate (built CLI)', function () {
  this.timeout(120000);
  let work: string;
  const env = () => ({ ...process.env, DESIGN_TO_CODE_CACHE: join(work, 'onnx-cache') });
  const run = (args: string[]): Promise<Run> =>
    new Promise((done) => {
      execFile('node', [CLI, 'generate', ...args], { env: env() }, (error, stdout, stderr) => {
        done({ code: error ? ((error as { code?: number }).code ?? 1) : 0, stdout, stderr });
      });
    });
  const messagesFile = (name: string, messages: unknown): string => {
    const path = join(work, name);
    writeFileSync(path, JSON.stringify(messages));
    return path;
  };
  const imageMessages = (imagePath: string, text = 'Describe.') => [
    {
      role: 'user',
      content: [
        { type: 'image', path: imagePath },
        { type: 'text', text },
      ],
    },
  ];
  const assertCleanError = (result: Run, pattern: RegExp) => {
    assert.notEqual(result.code, 0);
    assert.match(result.stderr, pattern);
    assert.doesNotMatch(result.stderr, /\n\s+at /, 'no stack trace');
    assert.equal(result.stdout, '');
  };

  before(() => {
    execFileSync('npm', ['run', '--silent', 'build'], { cwd: ROOT, stdio: 'ignore' });
    work = mkdtempSync(join(tmpdir(), 'd2c-cli-'));
    cpSync(join(TINY_IMAGES_DIR, 'diagram_450x230.png'), join(work, 'diagram.png'));
  });
  after(() => rmSync(work, { recursive: true, force: true }));

  it('--json prints the golden prompt ids and greedy tokens for a chat with an image', async () => {
    const golden = goldenCases().find((c) => c.name === 'drawio_diagram')!;
    const [system, user] = golden.messages;
    const file = messagesFile('chat.json', [
      system,
      {
        role: 'user',
        content: (user.content as { type: string; text?: string }[]).map((part) =>
          part.type === 'image' ? { type: 'image', path: 'diagram.png' } : part,
        ),
      },
    ]);
    const result = await run([
      '--model',
      TINY_MODEL_DIR,
      '--messages',
      file,
      '--max-new-tokens',
      '24',
      '--greedy',
      '--precision',
      'fp32',
      '--json',
    ]);
    assert.equal(result.code, 0, result.stderr);
    const output = JSON.parse(result.stdout);
    assert.deepEqual(output.prompt_token_ids, golden.input_ids);
    assert.deepEqual(output.token_ids, golden.greedy_new_tokens);
    assert.equal(output.text, golden.greedy_text);
    assert.deepEqual(output.image_grid_thw, golden.image_grid_thw);
    assert.equal(output.device, 'cpu');
    assert.equal(output.precision, 'fp32');
    for (const key of ['preprocessMs', 'visionMs', 'prefillMs', 'firstTokenMs', 'perTokenMs']) {
      assert.equal(typeof output.timings_ms[key], 'number', key);
    }
  });

  it('streams the text to stdout without --json', async () => {
    const golden = goldenCases().find((c) => c.name === 'text_only')!;
    const file = messagesFile('text.json', golden.messages);
    const result = await run([
      '--model',
      TINY_MODEL_DIR,
      '--messages',
      file,
      '--max-new-tokens',
      '24',
      '--greedy',
      '--precision',
      'fp32',
    ]);
    assert.equal(result.code, 0, result.stderr);
    assert.equal(result.stdout, golden.greedy_text + '\n');
  });

  it('refuses an image that is not an image', async () => {
    writeFileSync(join(work, 'fake.png'), 'this is text, not a PNG');
    const file = messagesFile('fake.json', imageMessages('fake.png'));
    const result = await run(['--model', TINY_MODEL_DIR, '--messages', file, '--json']);
    assertCleanError(result, /image could not be read.*PNG, JPEG, WebP or GIF/);
  });

  it('refuses an image that is too large', async () => {
    const big = await sharp({
      create: { width: 10000, height: 7000, channels: 3, background: { r: 255, g: 255, b: 255 } },
    })
      .png({ compressionLevel: 1 })
      .toBuffer();
    writeFileSync(join(work, 'big.png'), big);
    const file = messagesFile('big.json', imageMessages('big.png'));
    const result = await run(['--model', TINY_MODEL_DIR, '--messages', file]);
    assertCleanError(result, /10000x7000 = 70000000 pixels; the limit is/);
  });

  it('names a missing tokenizer', async () => {
    const model = join(work, 'no-tokenizer');
    cpSync(TINY_MODEL_DIR, model, {
      recursive: true,
      filter: (src) => !/tokenizer\.json$|model\.safetensors$/.test(src),
    });
    symlinkSync(join(TINY_MODEL_DIR, 'model.safetensors'), join(model, 'model.safetensors'));
    const file = messagesFile('t.json', [{ role: 'user', content: 'hi' }]);
    const result = await run(['--model', model, '--messages', file]);
    assertCleanError(result, /tokenizer\.json is missing/);
  });

  it('refuses a checkpoint that is not Qwen3-VL', async () => {
    const model = join(work, 'llama');
    cpSync(TINY_MODEL_DIR, model, { recursive: true });
    const config = JSON.parse(readFileSync(join(model, 'config.json'), 'utf8'));
    writeFileSync(join(model, 'config.json'), JSON.stringify({ ...config, model_type: 'llama' }));
    const file = messagesFile('t2.json', [{ role: 'user', content: 'hi' }]);
    const result = await run(['--model', model, '--messages', file]);
    assertCleanError(result, /model_type is "llama", expected "qwen3_vl"/);
  });

  it('explains bad options and a malformed messages file', async () => {
    const missing = await run(['--model', TINY_MODEL_DIR]);
    assert.equal(missing.code, 2);
    assert.match(missing.stderr, /--messages FILE\.json is required/);
    const precision = await run([
      '--model',
      TINY_MODEL_DIR,
      '--messages',
      'x.json',
      '--precision',
      'fp8',
    ]);
    assert.equal(precision.code, 2);
    assert.match(precision.stderr, /--precision must be one of fp32, fp16, int4/);
    const bad = messagesFile('bad.json', { role: 'user' });
    assertCleanError(
      await run(['--model', TINY_MODEL_DIR, '--messages', bad]),
      /expected a JSON array/,
    );
    const image = messagesFile('noimg.json', imageMessages('missing.png'));
    assertCleanError(
      await run(['--model', TINY_MODEL_DIR, '--messages', image]),
      /cannot read image .*missing\.png: ENOENT/,
    );
  });

  it('--help prints the usage and succeeds', async () => {
    const result = await run(['--help']);
    assert.equal(result.code, 0);
    assert.match(result.stdout, /--max-new-tokens N/);
  });
});
