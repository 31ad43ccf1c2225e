/**
 * On-disk cache of built ONNX models: <cacheDir>/<key>/{vision,decoder}.onnx(.data) + build.json.
 *
 * The key is a sha256 over GRAPH_VERSION, the precision, config.json and, for every safetensors
 * shard, its name, size and JSON header. The header lists each tensor's dtype, shape and byte
 * offsets, so together with the size it pins the layout; hashing the weight bytes themselves
 * (4+ GB for the 2B model) would cost tens of seconds on every start. A checkpoint edited in
 * place without any size or header change would be missed; Hugging Face downloads never do that.
 *
 * Builds go to a temporary sibling directory that is renamed into place only when complete
 * (build.json is written last), so an interrupted build is never mistaken for a finished one.
 * A lock file per build (holding the builder's pid) makes a second process that wants the same
 * build wait for it and reuse it, instead of building it again beside it.
 * A process killed mid-build (the editor closed during the first, minutes-long build) cannot
 * clean up after itself: its temporary directory, named after its pid, is removed by the next
 * build once that pid is gone, so killed builds do not pile up gigabytes.
 * A new build replaces the older builds of the same checkpoint directory and precision (they
 * are stale: the checkpoint or the graph version changed), so the cache does not grow without
 * bound as models are updated.
 */
import { createHash } from 'node:crypto';
import {
  existsSync,
  mkdirSync,
  readFileSync,
  readdirSync,
  renameSync,
  rmSync,
  statSync,
  statfsSync,
  writeFileSync,
} from 'node:fs';
import { homedir } from 'node:os';
import { basename, join, resolve, sep } from 'node:path';
import type { Qwen3VLConfig } from '../checkpoint/config';
import type { ShardHeader } from '../checkpoint/safetensors';
import type { Precision } from '../contracts';
import type { BuildVariant } from '../onnx/build-graphs';
import { EngineError } from '../errors';
import { GRAPH_FILES } from '../onnx/build-graphs';

/** Bump whenever the graphs change in a way that makes old builds wrong. */
export const GRAPH_VERSION = 19;

const MANIFEST = 'build.json';

export function defaultCacheDir(): string {
  return process.env.DESIGN_TO_CODE_CACHE || join(homedir(), '.cache', 'design-to-code', 'onnx');
}

/** `precision` is the build variant: a precision, or e.g. 'int4-fp16' for int4 with fp16 activations. */
export function buildKey(
  configJson: string,
  shards: ShardHeader[],
  precision: Precision | BuildVariant,
): string {
  const hash = createHash('sha256');
  hash.update(`graph-version:${GRAPH_VERSION}\nprecision:${precision}\n`);
  hash.update(configJson);
  for (const shard of shards) {
    hash.update(`\n${basename(shard.file)}:${shard.size}\n`);
    hash.update(shard.header);
  }
  return hash.digest('hex').slice(0, 32);
}

export interface CachedBuild {
  dir: string;
  vision: string;
  decoder: string;
  /** The CPU int4 build's 8-bit decoder for prompts (build-graphs.ts); absent elsewhere. */
  prefill?: string;
  /** A graph-capture build's decoder forms (build-graphs.ts GRAPH_FILES), instead of `decoder`. */
  captured?: { promptForm: string; step: string; verify?: string };
  /** True when this call built it (false: reused). */
  built: boolean;
}

interface Manifest {
  graphVersion: number;
  precision: Precision | BuildVariant;
  key: string;
  /** The checkpoint directory this was built from. */
  source: string;
  files: Record<string, number>;
}

/** Returns the cached build for `key`, or builds it with `build(tmpDir)` first. */
export function ensureBuild(
  cacheDir: string,
  key: string,
  precision: Precision | BuildVariant,
  estimatedBytes: number,
  build: (dir: string) => void,
  source = '',
): CachedBuild {
  const dir = join(cacheDir, `${precision}-${key}`);
  const result = (built: boolean): CachedBuild => ({
    dir,
    vision: join(dir, GRAPH_FILES.vision),
    decoder: join(dir, GRAPH_FILES.decoder),
    ...(existsSync(join(dir, GRAPH_FILES.prefill))
      ? { prefill: join(dir, GRAPH_FILES.prefill) }
      : {}),
    ...(existsSync(join(dir, GRAPH_FILES.step))
      ? {
          captured: {
            promptForm: join(dir, GRAPH_FILES.promptForm),
            step: join(dir, GRAPH_FILES.step),
            ...(existsSync(join(dir, GRAPH_FILES.verify))
              ? { verify: join(dir, GRAPH_FILES.verify) }
              : {}),
          },
        }
      : {}),
    built,
  });
  if (isComplete(dir, key)) return result(false);
  // Two servers started at once on one checkpoint: one builds, the other waits and reuses it
  // (building twice costs twice the minutes and the disk, and may not fit where one build does).
  let release: (() => void) | undefined;
  try {
    release = acquireBuildLock(join(cacheDir, `.lock-${precision}-${key}`), () =>
      isComplete(dir, key),
    );
  } catch (error) {
    throw asDiskError(error, cacheDir, estimatedBytes);
  }
  if (!release) return result(false);
  try {
    // It may have been finished by another process between the check above and the lock.
    if (isComplete(dir, key)) return result(false);
    removeAbandonedBuilds(cacheDir);
    const tmp = join(cacheDir, `${TMP_PREFIX}${precision}-${key}-${process.pid}-${Date.now()}`);
    try {
      mkdirSync(tmp, { recursive: true });
      checkFreeSpace(cacheDir, estimatedBytes);
      build(tmp);
      const files: Record<string, number> = {};
      for (const file of Object.values(GRAPH_FILES)) {
        for (const name of [file, `${file}.data`]) {
          if (existsSync(join(tmp, name))) files[name] = statSync(join(tmp, name)).size;
        }
      }
      const manifest: Manifest = { graphVersion: GRAPH_VERSION, precision, key, source, files };
      writeFileSync(join(tmp, MANIFEST), JSON.stringify(manifest, null, 2));
      // A stale or partial directory under the final name is replaced.
      if (existsSync(dir) && !isComplete(dir, key)) rmSync(dir, { recursive: true, force: true });
      try {
        renameSync(tmp, dir);
      } catch (error) {
        // Another process finished the same build first: use theirs.
        if (!isComplete(dir, key)) throw error;
        rmSync(tmp, { recursive: true, force: true });
      }
      if (source) removeStaleBuilds(cacheDir, dir, source, precision);
      return result(true);
    } catch (error) {
      rmSync(tmp, { recursive: true, force: true });
      throw asDiskError(error, cacheDir, estimatedBytes);
    }
  } finally {
    release();
  }
}

const TMP_PREFIX = '.tmp-';

/**
 * Takes the lock file at `path` (it holds the owner's pid), waiting while a running process
 * holds it; a dead owner's lock is taken over. Returns its release, or undefined when `done()`
 * became true while waiting. The wait blocks, as the build it stands in for would.
 */
function acquireBuildLock(path: string, done: () => boolean): (() => void) | undefined {
  for (;;) {
    try {
      writeFileSync(path, String(process.pid), { flag: 'wx' });
      return () => rmSync(path, { force: true });
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    }
    const owner = lockOwner(path);
    if (owner === undefined ? isOldFile(path) : !isRunning(owner)) {
      rmSync(path, { force: true });
      continue;
    }
    if (done()) return undefined;
    Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 500);
  }
}

function lockOwner(path: string): number | undefined {
  try {
    const pid = Number(readFileSync(path, 'utf8').trim());
    return Number.isInteger(pid) && pid > 0 ? pid : undefined;
  } catch {
    return undefined;
  }
}

/** A lock file without a pid is being written right now, unless it has been so for long. */
function isOldFile(path: string): boolean {
  try {
    return Date.now() - statSync(path).mtimeMs > 10_000;
  } catch {
    return false;
  }
}

/** Deletes the temporary directories of builds whose process no longer runs. */
function removeAbandonedBuilds(cacheDir: string): void {
  let entries: string[];
  try {
    entries = readdirSync(cacheDir);
  } catch {
    return;
  }
  for (const entry of entries) {
    if (!entry.startsWith(TMP_PREFIX)) continue;
    // .tmp-<variant>-<key>-<pid>-<time>: the variant may hold dashes, so read from the end.
    const pid = Number(entry.split('-').at(-2));
    if (!Number.isInteger(pid) || pid <= 0 || isRunning(pid)) continue;
    rmSync(join(cacheDir, entry), { recursive: true, force: true });
  }
}

/**
 * Whether another process with this pid runs. Our own pid counts as gone: builds are
 * synchronous, so no build of this process can be in progress here; a lock or directory with
 * our pid was left by an earlier process that had the same pid (a restarted container).
 */
function isRunning(pid: number): boolean {
  if (pid === process.pid) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    // EPERM: it runs, as another user.
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** The builds made from a checkpoint in `sourceDir` (a model being removed), as folders. */
export function buildsMadeFrom(cacheDir: string, sourceDir: string): string[] {
  const within = resolve(sourceDir);
  return buildsWhere(
    cacheDir,
    (manifest) => manifest.source === within || manifest.source.startsWith(within + sep),
  );
}

/** Deletes the other builds of `source` in this variant: older graphs, or the checkpoint before. */
function removeStaleBuilds(
  cacheDir: string,
  keep: string,
  source: string,
  precision: Precision | BuildVariant,
) {
  const stale = buildsWhere(
    cacheDir,
    // The same variant only: 'gpu-int4-captured-4096' also starts with 'gpu-int4-'.
    (manifest, entry) =>
      entry.startsWith(`${precision}-`) &&
      manifest.source === source &&
      manifest.precision === precision,
  );
  for (const dir of stale) {
    if (dir === keep) continue;
    try {
      rmSync(dir, { recursive: true, force: true });
    } catch {
      // a folder that cannot be deleted is left where it is
    }
  }
}

/** The build folders in `cacheDir` whose manifest `matches`; others (not ours) are left out. */
function buildsWhere(
  cacheDir: string,
  matches: (manifest: Manifest, entry: string) => boolean,
): string[] {
  let entries: string[];
  try {
    entries = readdirSync(cacheDir);
  } catch {
    return []; // no cache yet
  }
  return entries
    .filter((entry) => {
      try {
        const manifest = JSON.parse(readFileSync(join(cacheDir, entry, MANIFEST), 'utf8'));
        return matches(manifest as Manifest, entry);
      } catch {
        return false; // not a build of ours (or unreadable): leave it alone
      }
    })
    .map((entry) => join(cacheDir, entry));
}

function isComplete(dir: string, key: string): boolean {
  try {
    const manifest = JSON.parse(readFileSync(join(dir, MANIFEST), 'utf8')) as Manifest;
    if (manifest.graphVersion !== GRAPH_VERSION || manifest.key !== key) return false;
    return Object.entries(manifest.files).every(([name, size]) => {
      try {
        return statSync(join(dir, name)).size === size;
      } catch {
        return false;
      }
    });
  } catch {
    return false;
  }
}

function checkFreeSpace(cacheDir: string, needed: number): void {
  let free: number;
  try {
    const stats = statfsSync(cacheDir);
    free = stats.bavail * stats.bsize;
  } catch {
    return; // no statfs on this platform/filesystem: the write itself will tell
  }
  if (free < needed) {
    throw new EngineError('disk_full', diskMessage(cacheDir, needed, free));
  }
}

function asDiskError(error: unknown, cacheDir: string, needed: number): unknown {
  if ((error as NodeJS.ErrnoException)?.code === 'ENOSPC') {
    return new EngineError('disk_full', diskMessage(cacheDir, needed), { cause: error });
  }
  if ((error as NodeJS.ErrnoException)?.code === 'EACCES') {
    return new EngineError(
      'internal',
      `Cannot write the ONNX cache in ${cacheDir} (permission denied). Set DESIGN_TO_CODE_CACHE to a writable directory.`,
      { cause: error },
    );
  }
  return error;
}

function diskMessage(cacheDir: string, needed: number, free?: number): string {
  const gb = (n: number) => `${(n / 1e9).toFixed(1)} GB`;
  return (
    `Not enough disk space to build the ONNX model in ${cacheDir}: it needs about ${gb(needed)}` +
    (free === undefined ? '' : ` and ${gb(free)} is free`) +
    '. Free some space, or point DESIGN_TO_CODE_CACHE (or the cacheDir option) at a disk with room.'
  );
}
