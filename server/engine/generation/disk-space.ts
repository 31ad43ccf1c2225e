/**
 * What the engine's disk caches (vision outputs, the saved conversation) leave free: they are
 * shortcuts, and must never be what fills the user's disk.
 */
import { statfs } from 'node:fs/promises';

/** Free space a cache write leaves the disk at least. */
export const KEEP_FREE_BYTES = 2 * 1024 ** 3;

/**
 * Bytes an unprivileged process may still write to the disk holding `dir`; Infinity where the
 * file system does not say (the write itself then fails on a full disk, and is dropped).
 */
export async function diskFreeBytes(dir: string): Promise<number> {
  try {
    const disk = await statfs(dir);
    return disk.bavail * disk.bsize;
  } catch {
    return Infinity;
  }
}

/** Whether writing `bytes` under `dir` leaves KEEP_FREE_BYTES free (`free` for tests). */
export async function roomFor(
  dir: string,
  bytes: number,
  free: (dir: string) => Promise<number> = diskFreeBytes,
): Promise<boolean> {
  return (await free(dir)) >= bytes + KEEP_FREE_BYTES;
}
