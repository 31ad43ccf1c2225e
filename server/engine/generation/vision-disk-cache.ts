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
 * A file: a little-endian uint32 header length, the header as JSON ({ tokens, embeds,
 * deepstack: [lengths] }, in float32 values), then the float32 values in that order.
 */
import {
  mkdir,
  readFile,
  readdir,
  rename,
  stat,
  unlink,
  utimes,
  writeFile,
} from 'node:fs/promises';
import { join } from 'node:path';
import type { VisionOutput } from '../contracts';
import { diskFreeBytes, roomFor } from './disk-space';

interface Header {
  tokens: number;
  embeds: number;
  deepstack: number[];
}

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
    let bytes: Buffer;
    try {
      bytes = await readFile(path);
    } catch {
      return undefined; // not cached
    }
    const output = decode(bytes);
    if (!output) {
      await unlink(path).catch(() => undefined);
      return undefined;
    }
    const now = new Date();
    await utimes(path, now, now).catch(() => undefined); // recently used: kept longest
    return output;
  }

  /** Queues the write; `flushed` resolves once it (and any before it) is done or dropped. */
  write(name: string, output: VisionOutput): void {
    this.writes = this.writes.then(() => this.store(name, output)).catch(() => undefined);
  }

  flushed(): Promise<void> {
    return this.writes;
  }

  private async store(name: string, output: VisionOutput): Promise<void> {
    const bytes = encode(output);
    if (bytes.byteLength > this.maxBytes) return;
    await mkdir(this.dir, { recursive: true });
    if (!(await roomFor(this.dir, bytes.byteLength, this.freeBytes))) return;
    // Written whole, then renamed: a reader never sees half a file under the entry's name.
    const temporary = `${this.path(name)}.${process.pid}.tmp`;
    try {
      await writeFile(temporary, bytes);
      await rename(temporary, this.path(name));
    } catch (error) {
      await unlink(temporary).catch(() => undefined);
      throw error;
    }
    await this.trim();
  }

  /** Deletes the least recently used entries until the folder holds at most maxBytes. */
  private async trim(): Promise<void> {
    const names = (await readdir(this.dir)).filter((name) => name.endsWith(SUFFIX));
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

function encode(output: VisionOutput): Buffer {
  const header: Header = {
    tokens: output.tokens,
    embeds: output.imageEmbeds.length,
    deepstack: output.deepstack.map((features) => features.length),
  };
  const json = Buffer.from(JSON.stringify(header));
  const length = Buffer.alloc(4);
  length.writeUInt32LE(json.byteLength);
  const arrays = [output.imageEmbeds, ...output.deepstack].map((values) =>
    Buffer.from(values.buffer, values.byteOffset, values.byteLength),
  );
  return Buffer.concat([length, json, ...arrays]);
}

/** The outputs a file holds, or undefined when it is not a whole file of this format. */
function decode(bytes: Buffer): VisionOutput | undefined {
  if (bytes.byteLength < 4) return undefined;
  const headerLength = bytes.readUInt32LE(0);
  let header: Header;
  try {
    header = JSON.parse(bytes.subarray(4, 4 + headerLength).toString('utf8')) as Header;
  } catch {
    return undefined;
  }
  const lengths = [header?.embeds, ...(Array.isArray(header?.deepstack) ? header.deepstack : [])];
  if (!Number.isInteger(header?.tokens) || !lengths.every((n) => Number.isInteger(n) && n >= 0)) {
    return undefined;
  }
  const start = 4 + headerLength;
  if (bytes.byteLength !== start + 4 * lengths.reduce((sum, n) => sum + n, 0)) return undefined;
  // Each array in a buffer of its own, as the vision encoder hands them out.
  const arrays: Float32Array[] = [];
  let offset = start;
  for (const n of lengths) {
    const values = new Float32Array(n);
    new Uint8Array(values.buffer).set(bytes.subarray(offset, offset + 4 * n));
    arrays.push(values);
    offset += 4 * n;
  }
  const [imageEmbeds, ...deepstack] = arrays;
  return { tokens: header.tokens, imageEmbeds: imageEmbeds!, deepstack };
}
