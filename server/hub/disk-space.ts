/** Checks up front that a download fits on the disk, instead of failing half way through. */
import { statfs } from 'node:fs/promises';
import { dirname } from 'node:path';
import { HubError } from './errors';

/** Room kept free besides the download itself, so the machine is not left with a full disk. */
export const DISK_MARGIN_BYTES = 256 * 1024 * 1024;

export async function freeBytesAt(path: string): Promise<number> {
  // The folder may not exist yet: ask the nearest ancestor that does.
  for (let dir = path; ; dir = dirname(dir)) {
    try {
      const stats = await statfs(dir);
      return stats.bavail * stats.bsize;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT' || dirname(dir) === dir) throw error;
    }
  }
}

export async function ensureDiskSpace(
  path: string,
  neededBytes: number,
  freeBytes: (path: string) => Promise<number> = freeBytesAt,
): Promise<void> {
  if (neededBytes <= 0) return;
  const free = await freeBytes(path);
  if (free < neededBytes + DISK_MARGIN_BYTES) {
    throw new HubError(
      'disk_full',
      `Not enough disk space in ${path}: the download needs ${formatBytes(neededBytes)} ` +
        `(plus ${formatBytes(DISK_MARGIN_BYTES)} to spare) but only ${formatBytes(free)} is free. ` +
        `Free some space or choose another folder with --cache-dir.`,
    );
  }
}

export function formatBytes(bytes: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return `${unit === 0 ? value : value.toFixed(1)} ${units[unit]}`;
}
