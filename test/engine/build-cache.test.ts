/**
 * The ONNX build cache: built once and reused, keyed by checkpoint content, precision and graph
 * version, partial or stale builds rebuilt, disk-full turned into an actionable error. Also the
 * execution-provider errors that can be checked on a CPU-only machine.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import {
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  rmSync,
  truncateSync,
  statSync,
  writeFileSync,
  readFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import type { BuildProgress } from '../../server/engine/contracts';
import { SafetensorsCheckpoint } from '../../server/engine/checkpoint/safetensors';
import { isEngineError } from '../../server/engine/errors';
import {
  GRAPH_VERSION,
  buildKey,
  defaultCacheDir,
  ensureBuild,
} from '../../server/engine/runtime/build-cache';
import { loadModel } from '../../server/engine/runtime/load-model';
import { candidateDevices } from '../../server/engine/runtime/providers';
import { TINY_MODEL } from './golden-tensors';

async function loadOnce(modelDir: string, cacheDir: string, precision: 'fp32' | 'fp16' = 'fp32') {
  const events: BuildProgress[] = [];
  const model = await loadModel(modelDir, {
    cacheDir,
    precision,
    onProgress: (p) => events.push(p),
  });
  await model.dispose();
  return events;
}

const builtDirs = (cacheDir: string) => readdirSync(cacheDir).filter((d) => !d.startsWith('.'));

describe('ONNX build cache', () => {
  let cacheDir: string;
  beforeEach(() => (cacheDir = mkdtempSync(join(tmpdir(), 'd2c-cache-'))));
  afterEach(() => rmSync(cacheDir, { recursive: true, force: true }));

  it('builds once, reports progress, then reuses the build', async () => {
    const first = await loadOnce(TINY_MODEL, cacheDir);
    const build = first.filter((e) => e.stage === 'build');
    for (const item of ['vision', 'decoder']) {
      const events = build.filter((e) => e.item === item);
      // From 0 to every tensor of that graph, one step per tensor, in order.
      assert.deepEqual(
        events.map((e) => e.done),
        Array.from({ length: events[0].total + 1 }, (_, i) => i),
      );
    }
    // The tiny checkpoint: 75 vision tensors, 46 text tensors; the vision graph is built first.
    assert.deepEqual(
      [...new Set(build.map((e) => `${e.item}/${e.total}`))],
      ['vision/75', 'decoder/46'],
    );
    assert.ok(first.some((e) => e.stage === 'load' && e.done === e.total));
    const [dir] = builtDirs(cacheDir);
    assert.deepEqual(readdirSync(join(cacheDir, dir)).sort(), [
      'build.json',
      'decoder.onnx',
      'decoder.onnx.data',
      'vision.onnx',
      'vision.onnx.data',
    ]);
    const second = await loadOnce(TINY_MODEL, cacheDir);
    assert.equal(second.filter((e) => e.stage === 'build').length, 0);
    assert.deepEqual(builtDirs(cacheDir), [dir]);
  });

  it('keys builds by precision and rebuilds a partial one', async () => {
    await loadOnce(TINY_MODEL, cacheDir, 'fp32');
    await loadOnce(TINY_MODEL, cacheDir, 'fp16');
    assert.equal(builtDirs(cacheDir).length, 2);
    const fp32 = builtDirs(cacheDir).find((d) => d.startsWith('fp32-'))!;
    const data = join(cacheDir, fp32, 'decoder.onnx.data');
    truncateSync(data, statSync(data).size - 100); // as if a previous build was cut short
    const again = await loadOnce(TINY_MODEL, cacheDir, 'fp32');
    assert.ok(again.some((e) => e.stage === 'build'));
    assert.equal(builtDirs(cacheDir).length, 2);
  });

  it('changes the key with the checkpoint content, the precision and the graph version', () => {
    const shards = SafetensorsCheckpoint.open(TINY_MODEL).shards;
    const config = readFileSync(join(TINY_MODEL, 'config.json'), 'utf8');
    const base = buildKey(config, shards, 'fp32');
    assert.equal(buildKey(config, shards, 'fp32'), base);
    assert.notEqual(buildKey(config, shards, 'int4'), base);
    assert.notEqual(buildKey(config + ' ', shards, 'fp32'), base);
    const resized = shards.map((s) => ({ ...s, size: s.size + 1 }));
    assert.notEqual(buildKey(config, resized, 'fp32'), base);
    assert.equal(typeof GRAPH_VERSION, 'number');
  });

  it('rebuilds when the checkpoint changes and drops the stale build', async () => {
    const model = mkdtempSync(join(tmpdir(), 'd2c-model-'));
    try {
      for (const f of ['config.json', 'model.safetensors'])
        copyFileSync(join(TINY_MODEL, f), join(model, f));
      await loadOnce(model, cacheDir);
      const config = JSON.parse(readFileSync(join(model, 'config.json'), 'utf8'));
      config.text_config.rms_norm_eps = 1e-5;
      writeFileSync(join(model, 'config.json'), JSON.stringify(config));
      const before = builtDirs(cacheDir);
      const events = await loadOnce(model, cacheDir);
      assert.ok(events.some((e) => e.stage === 'build'));
      // The stale build of that checkpoint is replaced by the new one.
      const after = builtDirs(cacheDir);
      assert.equal(after.length, 1);
      assert.notEqual(after[0], before[0]);
    } finally {
      rmSync(model, { recursive: true, force: true });
    }
  });

  it('drops stale builds of its own variant only, not those whose names extend it', () => {
    const build = (key: string, variant: 'gpu-int4' | 'gpu-int4-captured-4096') =>
      ensureBuild(
        cacheDir,
        key,
        variant,
        1,
        (dir) => writeFileSync(join(dir, 'decoder.onnx'), key),
        'ckpt',
      );
    const captured = build('a'.repeat(32), 'gpu-int4-captured-4096');
    build('b'.repeat(32), 'gpu-int4');
    // A new gpu-int4 build of the same checkpoint replaces the old gpu-int4 one, nothing else.
    build('c'.repeat(32), 'gpu-int4');
    assert.deepEqual(builtDirs(cacheDir).sort(), [
      basename(captured.dir),
      `gpu-int4-${'c'.repeat(32)}`,
    ]);
  });

  it('refuses to start a build that cannot fit on the disk, leaving nothing behind', () => {
    assert.throws(
      () => ensureBuild(cacheDir, 'k', 'fp32', 1e18, () => assert.fail('must not build')),
      (e) => isEngineError(e, 'disk_full') && /DESIGN_TO_CODE_CACHE/.test((e as Error).message),
    );
    assert.deepEqual(readdirSync(cacheDir), []);
  });

  it('turns ENOSPC during a build into disk_full and removes the partial build', () => {
    assert.throws(
      () =>
        ensureBuild(cacheDir, 'k', 'fp32', 1, (dir) => {
          writeFileSync(join(dir, 'vision.onnx.data'), 'partial');
          throw Object.assign(new Error('ENOSPC: no space left on device, write'), {
            code: 'ENOSPC',
          });
        }),
      (e) => isEngineError(e, 'disk_full') && /Not enough disk space/.test((e as Error).message),
    );
    assert.deepEqual(readdirSync(cacheDir), []);
    assert.ok(!existsSync(join(cacheDir, 'fp32-k')));
  });

  it('removes the temporary directories of killed builds, not those of running ones', () => {
    // A pid that has just exited: a build killed mid-way left its directory behind.
    const deadPid = spawnSync(process.execPath, ['-e', '']).pid!;
    const killed = join(cacheDir, `.tmp-int4-fp16-oldkey-${deadPid}-1700000000000`);
    const running = join(cacheDir, `.tmp-fp32-otherkey-${process.ppid}-1700000000000`);
    for (const dir of [killed, running]) {
      mkdirSync(dir);
      writeFileSync(join(dir, 'decoder.onnx.data'), 'half-written');
    }
    ensureBuild(cacheDir, 'k', 'fp32', 1, (dir) => writeFileSync(join(dir, 'vision.onnx'), 'x'));
    assert.ok(!existsSync(killed));
    assert.ok(existsSync(running));
  });

  it("takes over a lock and a temporary directory with its own pid (a restarted container's)", () => {
    const leftover = join(cacheDir, `.tmp-fp32-k-${process.pid}-1700000000000`);
    mkdirSync(leftover);
    writeFileSync(join(cacheDir, '.lock-fp32-k'), String(process.pid));
    const result = ensureBuild(cacheDir, 'k', 'fp32', 1, (dir) =>
      writeFileSync(join(dir, 'vision.onnx'), 'x'),
    );
    assert.equal(result.built, true);
    assert.deepEqual(readdirSync(cacheDir), ['fp32-k']);
  });

  it('two processes wanting the same build at once: one builds, the other waits and reuses it', async () => {
    const log = join(cacheDir, '..', `${basename(cacheDir)}.log`);
    const run = () =>
      new Promise<{ code: number | null; out: string }>((resolve) => {
        const child = spawn(
          process.execPath,
          ['--require', 'tsx/cjs', join(__dirname, 'support', 'slow-build.ts'), cacheDir, log],
          { stdio: ['ignore', 'pipe', 'inherit'] },
        );
        let out = '';
        child.stdout.on('data', (chunk) => (out += chunk));
        child.on('close', (code) => resolve({ code, out }));
      });
    try {
      const results = await Promise.all([run(), run()]);
      assert.deepEqual(
        results.map((r) => r.code),
        [0, 0],
      );
      const built = results.map((r) => JSON.parse(r.out).built as boolean).sort();
      assert.deepEqual(built, [false, true]);
      assert.equal(readFileSync(log, 'utf8').trim().split('\n').length, 1, 'built once');
      assert.deepEqual(readdirSync(cacheDir), ['fp32-samekey'], 'no lock or temporary left');
    } finally {
      rmSync(log, { force: true });
    }
  });

  it('defaults to ~/.cache/design-to-code/onnx, overridable by DESIGN_TO_CODE_CACHE', () => {
    const saved = process.env.DESIGN_TO_CODE_CACHE;
    try {
      delete process.env.DESIGN_TO_CODE_CACHE;
      assert.match(defaultCacheDir(), /\.cache[/\\]design-to-code[/\\]onnx$/);
      process.env.DESIGN_TO_CODE_CACHE = cacheDir;
      assert.equal(defaultCacheDir(), cacheDir);
    } finally {
      if (saved === undefined) delete process.env.DESIGN_TO_CODE_CACHE;
      else process.env.DESIGN_TO_CODE_CACHE = saved;
    }
  });
});

describe('execution providers (CPU-only machine)', () => {
  let cacheDir: string;
  before(() => (cacheDir = mkdtempSync(join(tmpdir(), 'd2c-ep-'))));
  after(() => rmSync(cacheDir, { recursive: true, force: true }));

  it('cpu loads and says so; auto falls back to a provider that loads and reports it', async () => {
    const cpu = await loadModel(TINY_MODEL, { cacheDir, device: 'cpu' });
    assert.equal(cpu.device, 'cpu');
    await cpu.dispose();
    const warnings: string[] = [];
    const auto = await loadModel(TINY_MODEL, {
      cacheDir,
      device: 'auto',
      onWarning: (message) => warnings.push(message),
    });
    assert.ok(['cpu', 'webgpu', 'cuda', 'dml', 'coreml'].includes(auto.device));
    console.log(`      auto picked ${auto.device}`);
    await auto.dispose();
    if (auto.device === 'cpu') {
      // No GPU provider loaded: the CPU build runs, not the GPU one, and the log says why.
      assert.deepEqual(
        readdirSync(cacheDir).filter((d) => d.startsWith('gpu-')),
        [],
      );
      if (candidateDevices('auto').length > 1) {
        assert.equal(warnings.length, 1);
        assert.match(warnings[0], /no GPU provider loads here, running on the CPU \(\w+: /);
      }
    }
  });

  it('names what is missing for a provider that cannot load', async function () {
    if (process.platform !== 'linux') this.skip();
    await assert.rejects(
      loadModel(TINY_MODEL, { cacheDir, device: 'dml' }),
      (e) =>
        isEngineError(e, 'device_unavailable') &&
        /not available on linux/.test((e as Error).message),
    );
    await assert.rejects(
      loadModel(TINY_MODEL, { cacheDir, device: 'coreml' }),
      (e) => isEngineError(e, 'device_unavailable') && /coreml/.test((e as Error).message),
    );
    let cudaError: unknown;
    try {
      const m = await loadModel(TINY_MODEL, { cacheDir, device: 'cuda' });
      await m.dispose(); // a machine with the CUDA provider installed: nothing to check
    } catch (e) {
      cudaError = e;
    }
    if (cudaError) {
      assert.ok(isEngineError(cudaError, 'device_unavailable'), String(cudaError));
      assert.match((cudaError as Error).message, /CUDA/);
    }
  });

  it('rejects an unknown precision', async () => {
    await assert.rejects(
      loadModel(TINY_MODEL, { cacheDir, precision: 'int8' as never }),
      (e) => isEngineError(e, 'bad_request') && /fp32, fp16, int4/.test((e as Error).message),
    );
  });
});
