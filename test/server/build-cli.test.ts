/**
 * `node dist/cli.js build`: builds the ONNX model into the cache ahead of time, with the JSON
 * progress lines that `serve` relays, and reuses a finished build.
 */
import { strict as assert } from 'node:assert';
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { resolveDevice } from '../../server/engine/runtime/providers';
import { TINY_MODEL_DIR } from './support/tiny-model';

const ROOT = join(__dirname, '..', '..');
const CLI = join(ROOT, 'dist', 'cli.js');

describe('design-to-code build (the built CLI)', function () {
  this.timeout(60_000);
  let cache: string;
  const build = (args: string[]) => {
    const result = spawnSync(process.execPath, [CLI, 'build', ...args], {
      cwd: ROOT,
      env: { ...process.env, DESIGN_TO_CODE_CACHE: cache },
      encoding: 'utf8',
    });
    const lines = result.stdout.split('\n').filter(Boolean);
    return { status: result.status, lines, stderr: result.stderr };
  };

  before(async () => {
    if (!existsSync(CLI))
      execFileSync(process.execPath, ['esbuild.mjs'], { cwd: ROOT, stdio: 'ignore' });
    cache = await mkdtemp(join(tmpdir(), 'd2c-build-cli-'));
  });
  after(async () => {
    await rm(cache, { recursive: true, force: true });
  });

  it('builds with JSON progress lines, then reuses the build', () => {
    const args = ['--model', TINY_MODEL_DIR, '--precision', 'fp32', '--json'];
    const first = build(args);
    assert.equal(first.status, 0, first.stderr);
    const events = first.lines.map((line) => JSON.parse(line));
    const progress = events.slice(0, -1);
    assert.ok(progress.length > 0);
    assert.ok(progress.every((event) => event.event === 'progress' && event.stage === 'build'));
    assert.deepEqual(new Set(progress.map((event) => event.item)), new Set(['vision', 'decoder']));
    const last = events.at(-1);
    assert.equal(last.event, 'built');
    assert.equal(last.built, true);
    assert.ok(last.dir.startsWith(cache) && existsSync(join(last.dir, 'build.json')));

    const again = build(args);
    assert.equal(again.status, 0);
    assert.deepEqual(
      again.lines.map((line) => JSON.parse(line)),
      [{ event: 'built', dir: last.dir, built: false }],
    );
    assert.equal(readdirSync(cache).filter((entry) => !entry.startsWith('.')).length, 1);
  });

  it('without --json: the build directory on stdout, progress on stderr', () => {
    const result = build(['--model', TINY_MODEL_DIR, '--precision', 'int4']);
    assert.equal(result.status, 0, result.stderr);
    assert.match(result.lines.join('\n'), /^built: .*int4-[0-9a-f]{32}$/);
    assert.match(result.stderr, /building decoder 100% \(\d+\/\d+ tensors\)/);
  });

  it('builds for the device: the GPU build for webgpu, for auto the build of the device that loads', async () => {
    const built = (device: string) => {
      const result = build(['--model', TINY_MODEL_DIR, '--precision', 'int4', '--device', device]);
      assert.equal(result.status, 0, result.stderr);
      return result.lines.join('\n');
    };
    assert.match(built('webgpu'), /^built: .*gpu-int4-[0-9a-f]{32}$/);
    // On a machine without a GPU provider that loads, auto runs on the CPU: the CPU build.
    const { device } = await resolveDevice('auto');
    const variant = device === 'cpu' ? 'int4' : 'gpu-int4';
    assert.match(built('auto'), new RegExp(`[/\\\\]${variant}-[0-9a-f]{32}$`));
  });

  it('explains bad usage (exit 2) and a directory that is not a checkpoint (exit 1)', () => {
    for (const [args, message] of [
      [[], /--model DIR is required/],
      [['--model', TINY_MODEL_DIR, '--precision', 'int3'], /--precision must be one of/],
      [['--model', TINY_MODEL_DIR, '--device', 'quantum'], /--device must be one of/],
      [['--model', TINY_MODEL_DIR, '--nonsense'], /Unknown option '--nonsense'/],
      [['--model', TINY_MODEL_DIR, '--parent', 'me'], /--parent must be a process id/],
    ] as const) {
      const result = build([...args]);
      assert.equal(result.status, 2);
      assert.deepEqual(result.lines, []);
      assert.match(result.stderr, message);
    }
    const missing = build(['--model', join(cache, 'nowhere'), '--json']);
    assert.equal(missing.status, 1);
    const [error] = missing.lines.map((line) => JSON.parse(line));
    assert.equal(error.event, 'error');
    assert.equal(error.code, 'model_not_found');
    assert.match(error.message, /No config\.json in .*nowhere/);
  });
});
