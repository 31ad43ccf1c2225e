/**
 * An inter-process lock on one model's cache folder, so that two servers started at once on the
 * same hub id (two editor windows) do not append to the same partial file: the second waits for
 * the first and then finds the download complete. The lock file holds the owner's pid; a lock
 * whose process is gone (killed mid-download) is taken over.
 */
import { open, readFile, rm, stat } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';

export interface LockOptions {
  signal?: AbortSignal;
  /** Called once when another process holds the lock and this one starts waiting. */
  onWait?: (ownerPid: number) => void;
  pollMs?: number;
}

/** Runs `task` while holding the lock file at `path`. */
export async function withFolderLock<T>(
  path: string,
  task: () => Promise<T>,
  options: LockOptions = {},
): Promise<T> {
  await acquire(path, options);
  try {
    return await task();
  } finally {
    held.delete(path);
    if ((await ownerOf(path)) === process.pid) await rm(path, { force: true });
  }
}

/** Locks this process holds: a lock file with our pid that is not among them is stale. */
const held = new Set<string>();

async function acquire(path: string, options: LockOptions): Promise<void> {
  let told = false;
  for (;;) {
    options.signal?.throwIfAborted();
    try {
      const handle = await open(path, 'wx');
      // Marked before the pid is written, so no waiter of this process sees it unmarked.
      held.add(path);
      try {
        await handle.writeFile(String(process.pid));
      } finally {
        await handle.close();
      }
      return;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    }
    const owner = await ownerOf(path);
    // Our own pid on a lock we do not hold: left by an earlier process with the same pid (a
    // restarted container reuses pids).
    const stale =
      owner === undefined
        ? await isOldEmptyLock(path)
        : owner === process.pid
          ? !held.has(path)
          : !isRunning(owner);
    if (stale) {
      await rm(path, { force: true });
      continue;
    }
    if (!told && owner !== undefined) {
      told = true;
      options.onWait?.(owner);
    }
    try {
      await sleep(options.pollMs ?? 500, undefined, { signal: options.signal });
    } catch (error) {
      options.signal?.throwIfAborted(); // the caller's reason, not a generic AbortError
      throw error;
    }
  }
}

async function ownerOf(path: string): Promise<number | undefined> {
  try {
    const pid = Number((await readFile(path, 'utf8')).trim());
    return Number.isInteger(pid) && pid > 0 ? pid : undefined;
  } catch {
    return undefined;
  }
}

/** A lock file without a pid is one being written right now, unless it has been so for long. */
async function isOldEmptyLock(path: string): Promise<boolean> {
  try {
    return Date.now() - (await stat(path)).mtimeMs > 10_000;
  } catch {
    return false; // gone already: the next attempt creates it
  }
}

function isRunning(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    // EPERM: it runs, as another user.
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}
