/**
 * Model downloads against a loopback stand-in for the Hugging Face hub: verified download,
 * resume after an interrupted transfer, checksum mismatch, disk check, offline mode and cache
 * management.
 */
import { strict as assert } from 'node:assert';
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { HubError } from '../../server/hub/errors';
import {
  completeCacheDir,
  listCachedModels,
  removeCachedModel,
} from '../../server/hub/model-cache';
import { cacheDirFor } from '../../server/hub/model-ref';
import { pullLockPath, pullModel, type DownloadProgress } from '../../server/hub/pull-model';
import { resolveModel } from '../../server/hub/resolve-model';
import { startLoopbackHub, type HubFile, type LoopbackHub } from './support/loopback-hub';

const MODEL_ID = 'acme/tiny-vl';
const WEIGHTS = randomBytes(3 * 1024 * 1024 + 17);
const FILES: HubFile[] = [
  { path: 'config.json', content: Buffer.from('{"model_type":"qwen3_vl"}\n'), lfs: false },
  { path: 'tokenizer.json', content: Buffer.from('{"model":{}}\n'), lfs: false },
  { path: 'model.safetensors', content: WEIGHTS, lfs: true },
  { path: 'README.md', content: Buffer.from('# docs stay on the hub\n'), lfs: false },
];

async function rejectsWith(promise: Promise<unknown>, code: string): Promise<HubError> {
  try {
    await promise;
  } catch (error) {
    assert.ok(error instanceof HubError, `expected a HubError, got ${String(error)}`);
    assert.equal(error.code, code, error.message);
    return error;
  }
  assert.fail(`expected a ${code} error`);
}

describe('model download from the hub', () => {
  let hub: LoopbackHub;
  let root: string;
  const plenty = async () => 1e15;

  beforeEach(async () => {
    hub = await startLoopbackHub(MODEL_ID, FILES);
    root = await mkdtemp(join(tmpdir(), 'd2c-models-'));
  });
  afterEach(async () => {
    await hub.close();
    await rm(root, { recursive: true, force: true });
  });

  const pull = (onProgress?: (progress: DownloadProgress) => void) =>
    pullModel(MODEL_ID, { root, connection: { hubUrl: hub.url }, onProgress, freeBytes: plenty });

  it('downloads the checkpoint files, verifies them and reports progress', async () => {
    const events: DownloadProgress[] = [];
    const result = await pull((progress) => events.push(progress));
    const dir = cacheDirFor(MODEL_ID, root);
    assert.equal(result.dir, dir);
    assert.equal(result.commit, hub.commit);
    assert.deepEqual(result.downloaded.sort(), [
      'config.json',
      'model.safetensors',
      'tokenizer.json',
    ]);
    assert.ok((await readFile(join(dir, 'model.safetensors'))).equals(WEIGHTS));
    assert.equal(await readFile(join(dir, 'config.json'), 'utf8'), '{"model_type":"qwen3_vl"}\n');
    assert.ok(!existsSync(join(dir, 'README.md')), 'docs are not part of a checkpoint');
    assert.ok(!existsSync(join(dir, '.partial')), 'no partial files left');
    assert.equal(await completeCacheDir(MODEL_ID, root), dir);

    const weights = events.filter((event) => event.file === 'model.safetensors');
    assert.ok(weights.length > 1);
    assert.deepEqual(weights.at(-1), {
      file: 'model.safetensors',
      bytes: WEIGHTS.length,
      total: WEIGHTS.length,
      overallBytes: events.at(-1)!.overallTotal,
      overallTotal: events.at(-1)!.overallTotal,
    });
    for (let i = 1; i < events.length; i++) {
      assert.ok(
        events[i].overallBytes >= events[i - 1].overallBytes,
        'progress only moves forward',
      );
    }

    const before = hub.log.length;
    const again = await pull();
    assert.deepEqual(again.downloaded, [], 'a complete cache is not downloaded again');
    assert.ok(!hub.log.slice(before).some((line) => line.includes('/resolve/')));
  });

  it('resumes an interrupted transfer with a Range request instead of starting over', async () => {
    const cutAt = 1024 * 1024;
    hub.misbehave.cutAfter = { path: 'model.safetensors', bytes: cutAt };
    await rejectsWith(pull(), 'network');
    const dir = cacheDirFor(MODEL_ID, root);
    assert.ok(
      !existsSync(join(dir, 'model.safetensors')),
      'an interrupted file never looks complete',
    );
    assert.equal(await completeCacheDir(MODEL_ID, root), undefined);
    const partials = (await readdir(join(dir, '.partial'))).filter((name) =>
      name.endsWith('.part'),
    );
    assert.equal(partials.length, 1);
    assert.match(partials[0], /^model\.safetensors\.[0-9a-f]{16}\.part$/);
    // What reached the disk before the cut: the bytes in flight when the socket died may not.
    const kept = (await stat(join(dir, '.partial', partials[0]))).size;
    assert.ok(kept > 0 && kept <= cutAt, `kept ${kept} of the ${cutAt} bytes sent`);

    const result = await pull();
    assert.deepEqual(result.downloaded, ['model.safetensors'], 'finished files are kept');
    assert.ok((await readFile(join(dir, 'model.safetensors'))).equals(WEIGHTS));
    assert.ok(
      hub.log.some((line) => line.endsWith(`bytes=${kept}-${WEIGHTS.length - 1}`)),
      `a Range request from byte ${kept}:\n${hub.log.join('\n')}`,
    );
    assert.equal(await completeCacheDir(MODEL_ID, root), dir);
  });

  it('refuses bytes that do not match the listed sha256 and leaves no file behind', async () => {
    const corrupt = Buffer.from(WEIGHTS);
    corrupt[12345] ^= 0xff;
    hub.misbehave.corrupt = { path: 'model.safetensors', content: corrupt };
    const error = await rejectsWith(pull(), 'checksum_mismatch');
    assert.match(error.message, /model\.safetensors/);
    assert.match(error.message, /sha256/);
    const dir = cacheDirFor(MODEL_ID, root);
    assert.ok(!existsSync(join(dir, 'model.safetensors')));
    const partials = (await readdir(join(dir, '.partial'))).filter((name) =>
      name.endsWith('.part'),
    );
    assert.deepEqual(partials, [], 'the corrupt partial is deleted');
    assert.equal(await completeCacheDir(MODEL_ID, root), undefined);
  });

  it('refuses a file that is shorter than listed', async () => {
    hub.misbehave.corrupt = { path: 'config.json', content: Buffer.from('{}') };
    await rejectsWith(pull(), 'checksum_mismatch');
    assert.ok(!existsSync(join(cacheDirFor(MODEL_ID, root), 'config.json')));
  });

  it('two pulls of one model at once (two servers starting): the second waits, both succeed', async () => {
    // Without the lock both appended to the same partial file and both failed the checksum.
    const waits: string[] = [];
    const both = await Promise.all([
      pull(),
      pullModel(MODEL_ID, {
        root,
        connection: { hubUrl: hub.url },
        freeBytes: plenty,
        onWaiting: (message) => waits.push(message),
      }),
    ]);
    const dir = cacheDirFor(MODEL_ID, root);
    assert.ok((await readFile(join(dir, 'model.safetensors'))).equals(WEIGHTS));
    assert.deepEqual(both[1].downloaded, [], "the second found the first one's download");
    assert.equal(waits.length, 1);
    assert.match(waits[0], /being downloaded by another process \(pid \d+\); waiting/);
    assert.ok(!existsSync(pullLockPath(dir)), 'the lock is released');
  });

  it('takes over the lock of a process that was killed mid-download', async () => {
    const deadPid = spawnSync(process.execPath, ['-e', '']).pid!;
    const lock = pullLockPath(cacheDirFor(MODEL_ID, root));
    await mkdir(dirname(lock), { recursive: true });
    await writeFile(lock, String(deadPid));
    await pull();
    assert.equal(await completeCacheDir(MODEL_ID, root), cacheDirFor(MODEL_ID, root));
  });

  it('takes over a lock with its own pid that it does not hold (a restarted container)', async () => {
    const lock = pullLockPath(cacheDirFor(MODEL_ID, root));
    await mkdir(dirname(lock), { recursive: true });
    await writeFile(lock, String(process.pid));
    await pull();
    assert.equal(await completeCacheDir(MODEL_ID, root), cacheDirFor(MODEL_ID, root));
    assert.ok(!existsSync(lock));
  });

  it('stops waiting for a running download when cancelled', async () => {
    const lock = pullLockPath(cacheDirFor(MODEL_ID, root));
    await mkdir(dirname(lock), { recursive: true });
    await writeFile(lock, String(process.ppid));
    const controller = new AbortController();
    const pending = pullModel(MODEL_ID, {
      root,
      connection: { hubUrl: hub.url },
      freeBytes: plenty,
      signal: controller.signal,
      onWaiting: () => controller.abort(new Error('stopped (SIGTERM)')),
    });
    await assert.rejects(pending, /stopped \(SIGTERM\)/);
    assert.equal(await readFile(lock, 'utf8'), String(process.ppid), 'the owner keeps its lock');
  });

  it('checks the free disk space before downloading anything', async () => {
    const error = await rejectsWith(
      pullModel(MODEL_ID, {
        root,
        connection: { hubUrl: hub.url },
        freeBytes: async () => 1024,
      }),
      'disk_full',
    );
    assert.match(error.message, /needs 3\.0 MiB/);
    assert.ok(!hub.log.some((line) => line.includes('/resolve/')));
  });

  it('names a missing repository clearly', async () => {
    const error = await rejectsWith(
      pullModel('acme/no-such-model', { root, connection: { hubUrl: hub.url }, freeBytes: plenty }),
      'not_found',
    );
    assert.match(error.message, /acme\/no-such-model/);
  });

  it('--offline uses the cache only and says how to fill it', async () => {
    const offline = { root, offline: true, connection: { hubUrl: hub.url } };
    const error = await rejectsWith(resolveModel(MODEL_ID, offline), 'not_in_cache');
    assert.match(error.message, /models pull acme\/tiny-vl/);
    assert.equal(hub.log.length, 0, 'offline mode never calls the hub');

    await pull();
    const before = hub.log.length;
    const resolved = await resolveModel(MODEL_ID, offline);
    assert.deepEqual(resolved, {
      dir: cacheDirFor(MODEL_ID, root),
      name: MODEL_ID,
      source: 'cache',
    });
    assert.equal(hub.log.length, before);
  });

  it('falls back to a complete cache when the hub is unreachable', async () => {
    await pull();
    await hub.close();
    const warnings: string[] = [];
    const resolved = await resolveModel(MODEL_ID, {
      root,
      offline: false,
      connection: { hubUrl: hub.url },
      onWarning: (message) => warnings.push(message),
    });
    assert.equal(resolved.source, 'cache');
    assert.equal(warnings.length, 1);
  });

  it('uses a local directory as it is and rejects a reference that is neither', async () => {
    const local = await mkdtemp(join(tmpdir(), 'd2c-local-'));
    try {
      const resolved = await resolveModel(local, { root, offline: true, connection: {} });
      assert.equal(resolved.dir, local);
      assert.equal(resolved.source, 'directory');
    } finally {
      await rm(local, { recursive: true });
    }
    await rejectsWith(
      resolveModel('./no/such/dir', { root, offline: true, connection: {} }),
      'bad_model_ref',
    );
  });

  it('lists and removes cached models', async () => {
    await pull();
    await writeFile(join(root, 'not-a-model'), '');
    const models = await listCachedModels(root);
    assert.equal(models.length, 1);
    assert.equal(models[0].modelId, MODEL_ID);
    assert.equal(models[0].complete, true);
    assert.equal(models[0].commit, hub.commit);
    assert.ok(models[0].bytes >= WEIGHTS.length);
    assert.equal(await removeCachedModel(MODEL_ID, root), true);
    assert.equal(await removeCachedModel(MODEL_ID, root), false);
    assert.deepEqual(await listCachedModels(root), []);
  });
});
