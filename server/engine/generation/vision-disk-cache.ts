/**
 * Vision-tower outputs kept on disk beside the model's build (a file per image, device and
 * grid), so that an image seen before the server restarted skips the tower: after the model
 * was unloaded while idle, a reopened VS Code, a refinement of a generation from the history.
 * On two CPU cores the tower of a 1280x800 screenshot takes 13 s and its file (32 MB) reads
 * in milliseconds. The least recently used files go once the folder passes `maxBytes`.
 *
 * It is only ever a shortcut: a file that cannot be read, or does not hold what its header
 * says, is deleted and the tower runs; a write that fails (a full disk) is dropped, and none is
 * made that would leave the disk under KEEP_FREE_BYTES free (disk-space.ts).
 *
 * A file (array-file.ts): { tokens } and the float32 arrays image_embeds, then each DeepStack
 * tap's.
 */
import { mkdir, readdir, stat, unlink, utimes } from 'node:fs/promises';
import { join } from 'node:path';
import type { VisionOutput } from '../contracts';
import { arrayFile, readArrayFile, removeKilledWrites } from './array-file';
import { diskFreeBytes, roomFor } from './disk-space';

const SUFFIX = '.vision';

export class VisionDiskCache {
  /** Writes run one after another, after the generation that made them has moved on. */
  private writes: Promise<void> = Promise.resolve();

  constructor(
    private readonly dir: string,
    private readonly maxBytes = 1024 ** 3,
    /** Bytes the disk has free for a write (a test's stand-in for a nearly full disk). */
    private readonly freeBytes = diskFreeBytes,
  ) {}

  /** The file name of an image's outputs: the device computed them, at this grid. */
  static entryName(device: string, imageKey: string, gridThw: readonly number[]): string {
    return `${device}-${imageKey}-${gridThw.join('x')}`;
  }

  async read(name: string): Promise<VisionOutput | undefined> {
    const path = this.path(name);
    const read = await readArrayFile(path, parseHeader);
    if (read === 'missing') return undefined; // not cached
    const [imageEmbeds, ...deepstack] = read === 'broken' ? [] : read.arrays;
    if (read === 'broken' || read.header.type !== 'float32' || !imageEmbeds) {
      await unlink(path).catch(() => undefined);
      return undefined;
    }
    const now = new Date();
    await utimes(path, now, now).catch(() => undefined); // recently used: kept longest
    return {
      tokens: read.header.tokens,
      imageEmbeds: imageEmbeds as Float32Array,
      deepstack: deepstack as Float32Array[],
    };
  }

  /** Queues the write; `flushed` resolves once it (and any before it) is done or dropped. */
  write(name: string, output: VisionOutput): void {
    this.writes = this.writes.then(() => this.store(name, output)).catch(() => undefined);
  }

  flushed(): Promise<void> {
    return this.writes;
  }

  private async store(name: string, output: VisionOutput): Promise<void> {
    const arrays = [output.imageEmbeds, ...output.deepstack];
    const file = arrayFile({ tokens: output.tokens }, 'float32', arrays);
    if (file.size > this.maxBytes) return;
    await mkdir(this.dir, { recursive: true });
    if (!(await roomFor(this.dir, file.size, this.freeBytes))) return;
    await file.write(this.path(name));
    await this.trim();
  }

  /**
   * Deletes the least recently used entries until the folder holds at most maxBytes, and what
   * killed writes left behind.
   */
  private async trim(): Promise<void> {
    const all = await readdir(this.dir);
    await removeKilledWrites(this.dir, all);
    const names = all.filter((name) => name.endsWith(SUFFIX));
    const entries = await Promise.all(
      names.map(async (name) => {
        const info = await stat(join(this.dir, name)).catch(() => undefined);
        return { name, size: info?.size ?? 0, used: info?.mtimeMs ?? 0 };
      }),
    );
    let total = entries.reduce((sum, entry) => sum + entry.size, 0);
    for (const entry of entries.sort((a, b) => a.used - b.used)) {
      if (total <= this.maxBytes) break;
      await unlink(join(this.dir, entry.name)).catch(() => undefined);
      total -= entry.size;
    }
  }

  private path(name: string): string {
    return join(this.dir, `${name}${SUFFIX}`);
  }
}

/** The vision file's own header field, or undefined when it is not what the cache writes. */
function parseHeader(raw: Record<string, unknown>): { tokens: number } | undefined {
  return Number.isInteger(raw.tokens) ? { tokens: raw.tokens as number } : undefined;
}
