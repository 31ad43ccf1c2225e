/** `node dist/cli.js models list|pull|rm` against the loopback hub stand-in. */
import { strict as assert } from 'node:assert';
import { execFile, execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startLoopbackHub, type LoopbackHub } from './support/loopback-hub';

const ROOT = join(__dirname, '..', '..');
const CLI = join(ROOT, 'dist', 'cli.js');

function models(
  args: string[],
  env: NodeJS.ProcessEnv,
): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [CLI, 'models', ...args],
      { env: { ...process.env, ...env } },
      (error, stdout, stderr) => resolve({ code: error ? Number(error.code) : 0, stdout, stderr }),
    );
  });
}

describe('design-to-code models (the built CLI)', function () {
  this.timeout(60_000);
  let hub: LoopbackHub;
  let root: string;
  let env: NodeJS.ProcessEnv;

  before(async () => {
    if (!existsSync(CLI))
      execFileSync(process.execPath, ['esbuild.mjs'], { cwd: ROOT, stdio: 'ignore' });
    hub = await startLoopbackHub('acme/tiny-vl', [
      { path: 'config.json', content: Buffer.from('{"model_type":"qwen3_vl"}'), lfs: false },
      { path: 'model.safetensors', content: Buffer.alloc(600_000, 7), lfs: true },
    ]);
    root = await mkdtemp(join(tmpdir(), 'd2c-models-cli-'));
    env = {
      HF_ENDPOINT: hub.url,
      DESIGN_TO_CODE_MODELS: root,
      DESIGN_TO_CODE_CACHE: join(root, 'onnx'),
    };
  });
  after(async () => {
    await hub.close();
    await rm(root, { recursive: true, force: true });
  });

  it('pulls with JSON progress, lists, and removes a model', async () => {
    const pulled = await models(['pull', 'acme/tiny-vl', '--json'], env);
    assert.equal(pulled.code, 0, pulled.stderr);
    const events = pulled.stdout
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line));
    assert.ok(
      events.some((event) => event.event === 'progress' && event.file === 'model.safetensors'),
    );
    assert.deepEqual(events.at(-1).downloaded.sort(), ['config.json', 'model.safetensors']);

    const listed = await models(['list', '--json'], env);
    const { models: cached } = JSON.parse(listed.stdout);
    assert.deepEqual(
      cached.map((model: { modelId: string; complete: boolean }) => [
        model.modelId,
        model.complete,
      ]),
      [['acme/tiny-vl', true]],
    );
    const human = await models(['list'], env);
    assert.match(human.stdout, /acme\/tiny-vl\t.*\tcomplete/);

    // Two ONNX builds: one made from this model (with vision outputs kept beside it), one not.
    const build = (name: string, source: string) => {
      const dir = join(root, 'onnx', name);
      mkdirSync(join(dir, 'images'), { recursive: true });
      writeFileSync(join(dir, 'build.json'), JSON.stringify({ source }));
      writeFileSync(join(dir, 'vision.onnx.data'), Buffer.alloc(1000));
      writeFileSync(join(dir, 'images', 'cpu-abc-1x2x2.vision'), Buffer.alloc(24));
      return dir;
    };
    const ours = build('int4-ours', join(root, 'acme--tiny-vl'));
    const other = build('int4-other', join(root, 'acme--tiny-vl-2'));
    const removed = await models(['rm', 'acme/tiny-vl', '--json'], env);
    assert.equal(removed.code, 0, removed.stderr);
    assert.deepEqual(JSON.parse(removed.stdout), {
      event: 'removed',
      modelId: 'acme/tiny-vl',
      removed: true,
      builds: 1,
      buildBytes: 1000 + 24 + JSON.stringify({ source: join(root, 'acme--tiny-vl') }).length,
    });
    assert.equal(existsSync(ours), false, 'its build was left behind');
    assert.equal(existsSync(other), true, "another model's build was removed");
    assert.match((await models(['list'], env)).stdout, /No models/);
    const missing = await models(['rm', 'acme/tiny-vl'], env);
    assert.equal(missing.code, 1);
  });

  it('explains bad usage and hub failures', async () => {
    const bad = await models(['pull', 'not a model id'], env);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /is not a hub id/);
    const unknown = await models(['pull', 'acme/missing'], env);
    assert.equal(unknown.code, 1);
    assert.match(unknown.stderr, /acme\/missing/);
  });
});
