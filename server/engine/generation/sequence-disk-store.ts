/**
 * The decoder's cached conversation kept on disk across a restart: written when the server stops
 * (the model unloaded while idle, VS Code closed), taken back by the first request after the
 * next start when that request extends it (a refinement, a read-ahead of one). Without it such a
 * request prefills the whole conversation again: on two CPU cores about 15 s for a screenshot
 * and a page of code (3,000 tokens), against under a second to read its rows.
 *
 * One file, used once: `take` deletes it whether or not its sequence fits the request, so a
 * stale conversation never lingers; the next stop writes the sequence held then. Only a shortcut:
 * a file that is not whole, or whose rows do not fit the decoder, is dropped and the prompt is
 * prefilled; a write that fails (a full disk) leaves no file.
 *
 * A file: a little-endian uint32 header length, the header as JSON ({ ids, imageKeys, form,
 * type, lengths }), then the arrays' values in order (4 bytes each for float32, 2 for float16).
 */
import { open, readdir, rename, unlink, type FileHandle } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import type { KvRows, SavedSequence } from '../contracts';
import { diskFreeBytes, roomFor } from './disk-space';

/** What the decoder held, and which images (by key) its image pads are. */
export interface StoredSequence extends SavedSequence {
  imageKeys: string[];
}

/** A file's header: enough to decide whether to read its rows. */
export interface StoredHeader {
  ids: number[];
  imageKeys: string[];
  form: string;
  type: KvRows['type'];
  /** Values in each array. */
  lengths: number[];
}

/** 2 GiB: about 9,000 positions of a 2B model's fp32 cache (229 KB each). */
export const DEFAULT_SEQUENCE_DISK_BYTES = 2 * 1024 ** 3;

export class SequenceDiskStore {
  constructor(
    private readonly path: string,
    private readonly maxBytes = DEFAULT_SEQUENCE_DISK_BYTES,
    /** Bytes the disk has free for a save (a test's stand-in for a nearly full disk). */
    private readonly freeBytes = diskFreeBytes,
  ) {}

  /**
   * Writes the sequence in place of any saved before (whole, then renamed). Resolves false,
   * writing nothing, when its rows pass maxBytes or would leave the disk under KEEP_FREE_BYTES
   * free (disk-space.ts); rejects when the write fails.
   */
  async save(sequence: StoredSequence): Promise<boolean> {
    const { arrays } = sequence.rows;
    const bytes = arrays.reduce((sum, array) => sum + array.byteLength, 0);
    if (bytes > this.maxBytes) return false;
    await this.removeLeftovers();
    if (!(await roomFor(dirname(this.path), bytes, this.freeBytes))) return false;
    const header: StoredHeader = {
      ids: sequence.ids,
      imageKeys: sequence.imageKeys,
      form: sequence.rows.form,
      type: sequence.rows.type,
      lengths: arrays.map((array) => array.length),
    };
    const json = Buffer.from(JSON.stringify(header));
    const length = Buffer.alloc(4);
    length.writeUInt32LE(json.byteLength);
    const temporary = `${this.path}.${process.pid}.tmp`;
    try {
      const file = await open(temporary, 'w');
      try {
        // Array by array: a whole-file buffer would copy hundreds of MB first.
        for (const part of [length, json, ...arrays]) {
          await writeAll(file, new Uint8Array(part.buffer, part.byteOffset, part.byteLength));
        }
      } finally {
        await file.close();
      }
      await rename(temporary, this.path);
    } catch (error) {
      await unlink(temporary).catch(() => undefined);
      throw error;
    }
    return true;
  }

  /**
   * The saved sequence when `wanted` accepts its header, else undefined (also when there is
   * none or the file is not whole). The file is deleted either way.
   */
  async take(wanted: (header: StoredHeader) => boolean): Promise<StoredSequence | undefined> {
    let file: FileHandle;
    try {
      file = await open(this.path, 'r');
    } catch {
      return undefined; // nothing saved
    }
    try {
      // Read through the one handle: a file saved meanwhile (another window's server) replaces
      // the name, not what this handle reads.
      return await readSequence(file, wanted);
    } finally {
      await file.close();
      await unlink(this.path).catch(() => undefined);
    }
  }

  /** Temporary files of saves that never finished (a process killed while writing). */
  private async removeLeftovers(): Promise<void> {
    const dir = dirname(this.path);
    const prefix = `${basename(this.path)}.`;
    const names = await readdir(dir).catch(() => [] as string[]);
    for (const name of names) {
      if (name.startsWith(prefix) && name.endsWith('.tmp')) {
        await unlink(join(dir, name)).catch(() => undefined);
      }
    }
  }
}

async function readSequence(
  file: FileHandle,
  wanted: (header: StoredHeader) => boolean,
): Promise<StoredSequence | undefined> {
  const size = (await file.stat()).size;
  const start = await readExactly(file, 4, 0);
  if (!start) return undefined;
  const headerLength = Buffer.from(start).readUInt32LE(0);
  if (headerLength > size - 4) return undefined;
  const header = parseHeader(await readExactly(file, headerLength, 4));
  if (!header) return undefined;
  const elementBytes = header.type === 'float16' ? 2 : 4;
  const dataBytes = header.lengths.reduce((sum, n) => sum + n * elementBytes, 0);
  if (size !== 4 + headerLength + dataBytes || !wanted(header)) return undefined;
  const arrays: KvRows['arrays'] = [];
  let position = 4 + headerLength;
  for (const n of header.lengths) {
    const array = header.type === 'float16' ? new Uint16Array(n) : new Float32Array(n);
    const bytes = new Uint8Array(array.buffer);
    if (!(await readExactly(file, bytes.byteLength, position, bytes))) return undefined;
    arrays.push(array);
    position += bytes.byteLength;
  }
  return {
    ids: header.ids,
    imageKeys: header.imageKeys,
    rows: { form: header.form, type: header.type, arrays },
  };
}

async function writeAll(file: FileHandle, bytes: Uint8Array): Promise<void> {
  for (let done = 0; done < bytes.byteLength;) {
    done += (await file.write(bytes, done, bytes.byteLength - done)).bytesWritten;
  }
}

/** `length` bytes from `position`, or undefined when the file ends first. */
async function readExactly(
  file: FileHandle,
  length: number,
  position: number,
  into = new Uint8Array(length),
): Promise<Uint8Array | undefined> {
  let done = 0;
  while (done < length) {
    const { bytesRead } = await file.read(into, done, length - done, position + done);
    if (bytesRead === 0) return undefined;
    done += bytesRead;
  }
  return into;
}

function parseHeader(bytes: Uint8Array | undefined): StoredHeader | undefined {
  if (!bytes) return undefined;
  let header: StoredHeader;
  try {
    header = JSON.parse(Buffer.from(bytes).toString('utf8')) as StoredHeader;
  } catch {
    return undefined;
  }
  const integers = (list: unknown, min: number) =>
    Array.isArray(list) && list.every((n) => Number.isInteger(n) && n >= min);
  const valid =
    integers(header?.ids, 0) &&
    Array.isArray(header.imageKeys) &&
    header.imageKeys.every((key) => typeof key === 'string') &&
    typeof header.form === 'string' &&
    (header.type === 'float32' || header.type === 'float16') &&
    integers(header.lengths, 0);
  return valid ? header : undefined;
}
