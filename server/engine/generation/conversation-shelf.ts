/**
 * Conversations the decoder's KV cache held, kept on disk (CPU builds) so that going back to one
 * does not read it again: the cache holds one conversation, and a request that starts another
 * (a new image, another generation from the history) used to drop it. On two CPU cores reading a
 * screenshot and a page of code again (3,000 tokens) takes about 25 s; its rows come back from
 * disk in under a second. The engine puts a conversation here when a request is about to drop
 * it, and when it stops (an idle unload, VS Code closed); a request that goes on from a shelved
 * conversation further than from the cache takes it back (and the file goes: the conversation
 * lives in the cache again, and is shelved again when it leaves). Files are written in the
 * background; until then a conversation is offered, and taken back, from memory. The least
 * recently shelved go once the folder passes its bound.
 *
 * Only a shortcut: a file that is not whole, or whose rows do not fit the decoder, is dropped and
 * the prompt is prefilled; a write that fails (a full disk), or would leave the disk under
 * KEEP_FREE_BYTES free, is dropped. Only a conversation's ids and image keys vouch for it, so any
 * file that matches is correct whichever process wrote it.
 *
 * A file: a little-endian uint32 header length, the header as JSON ({ ids, imageKeys, form,
 * type, lengths }), then the arrays' values in order (4 bytes each for float32, 2 for float16).
 */
import { createHash } from 'node:crypto';
import { mkdir, open, readdir, rename, stat, unlink, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
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
export const DEFAULT_SHELF_BYTES = 2 * 1024 ** 3;

const SUFFIX = '.kv';
/** A temporary file this old belongs to a write that was killed, not to one in progress. */
const STALE_WRITE_MS = 10 * 60_000;

interface Entry {
  header: StoredHeader;
  bytes: number;
  /** When it was shelved (ms): the oldest go first. */
  shelved: number;
}

export class ConversationShelf {
  /** The shelf's files by name, read at first use. */
  private index: Promise<Map<string, Entry>> | undefined;
  /**
   * Conversations put here whose files are not written yet, by name: offered and taken from
   * memory meanwhile, so that going straight back to one neither waits for its write nor misses it.
   */
  private readonly pending = new Map<string, StoredSequence>();
  /** Writes run one after another, after the request that shelved them has moved on. */
  private writes: Promise<void> = Promise.resolve();

  constructor(
    private readonly dir: string,
    private readonly maxBytes = DEFAULT_SHELF_BYTES,
    /** Bytes the disk has free for a write (a test's stand-in for a nearly full disk). */
    private readonly freeBytes = diskFreeBytes,
  ) {}

  /** Queues the conversation's write; `flushed` resolves once it is written or dropped. */
  put(sequence: StoredSequence): void {
    const name = nameOf(sequence);
    this.pending.set(name, sequence);
    this.writes = this.writes
      .then(() => this.store(name, sequence))
      .catch(() => undefined)
      .finally(() => {
        if (this.pending.get(name) === sequence) this.pending.delete(name);
      });
  }

  flushed(): Promise<void> {
    return this.writes;
  }

  /**
   * The shelved conversation `score` rates highest, above 0 (how many of its tokens a request
   * keeps); none (score 0) when the shelf cannot be read.
   */
  async best(score: (header: StoredHeader) => number): Promise<{ name: string; score: number }> {
    let best = { name: '', score: 0 };
    const consider = (name: string, header: { ids: number[]; imageKeys: string[] }) => {
      const value = score(header as StoredHeader);
      if (value > best.score) best = { name, score: value };
    };
    for (const [name, sequence] of this.pending) consider(name, sequence);
    const index = await this.entries().catch(() => new Map<string, Entry>());
    for (const [name, entry] of index) if (!this.pending.has(name)) consider(name, entry.header);
    return best;
  }

  /** A shelved conversation, taken off the shelf (its file deleted); undefined if unreadable. */
  async take(name: string): Promise<StoredSequence | undefined> {
    const waiting = this.pending.get(name);
    if (waiting) {
      // Not written yet: its write is dropped (store checks), or its file deleted once written.
      this.pending.delete(name);
      return waiting;
    }
    const index = await this.entries();
    if (!index.delete(name)) return undefined;
    const path = join(this.dir, name);
    let file: FileHandle;
    try {
      file = await open(path, 'r');
    } catch {
      return undefined; // another process took it
    }
    try {
      return await readSequence(file, () => true);
    } finally {
      await file.close();
      await unlink(path).catch(() => undefined);
    }
  }

  private entries(): Promise<Map<string, Entry>> {
    this.index ??= this.readIndex();
    return this.index;
  }

  /**
   * Every whole file's header. Others are deleted: files cut short, and temporary files of writes
   * killed midway (old ones only: another server may be writing one now).
   */
  private async readIndex(): Promise<Map<string, Entry>> {
    const index = new Map<string, Entry>();
    const names = await readdir(this.dir).catch(() => [] as string[]);
    for (const name of names) {
      const path = join(this.dir, name);
      if (name.endsWith(SUFFIX)) {
        const entry = await readEntry(path);
        if (entry) index.set(name, entry);
        else await unlink(path).catch(() => undefined);
      } else if (name.endsWith('.tmp')) {
        const info = await stat(path).catch(() => undefined);
        if (info && Date.now() - info.mtimeMs > STALE_WRITE_MS) await unlink(path).catch(() => {});
      }
    }
    return index;
  }

  private async store(name: string, sequence: StoredSequence): Promise<void> {
    if (this.pending.get(name) !== sequence) return; // taken back before its turn
    const { arrays } = sequence.rows;
    const bytes = arrays.reduce((sum, array) => sum + array.byteLength, 0);
    if (bytes > this.maxBytes) return;
    const index = await this.entries();
    await mkdir(this.dir, { recursive: true });
    if (!(await roomFor(this.dir, bytes, this.freeBytes))) return;
    const header: StoredHeader = {
      ids: sequence.ids,
      imageKeys: sequence.imageKeys,
      form: sequence.rows.form,
      type: sequence.rows.type,
      lengths: arrays.map((array) => array.length),
    };
    const path = join(this.dir, name);
    const temporary = `${path}.${process.pid}.tmp`;
    try {
      await writeSequence(temporary, header, arrays);
      await rename(temporary, path);
    } catch (error) {
      await unlink(temporary).catch(() => undefined);
      throw error;
    }
    if (this.pending.get(name) !== sequence) {
      await unlink(path).catch(() => undefined); // taken back while it was being written
      return;
    }
    index.set(name, { header, bytes: (await stat(path)).size, shelved: Date.now() });
    await this.trim(index);
  }

  /** Deletes the least recently shelved conversations until the shelf holds at most maxBytes. */
  private async trim(index: Map<string, Entry>): Promise<void> {
    let total = [...index.values()].reduce((sum, entry) => sum + entry.bytes, 0);
    const oldestFirst = [...index.entries()].sort((a, b) => a[1].shelved - b[1].shelved);
    for (const [name, entry] of oldestFirst) {
      if (total <= this.maxBytes) break;
      index.delete(name);
      await unlink(join(this.dir, name)).catch(() => undefined);
      total -= entry.bytes;
    }
  }
}

/** A conversation's file name: by content, so the same conversation shelved again replaces it. */
function nameOf(sequence: StoredSequence): string {
  const hash = createHash('sha256').update(JSON.stringify([sequence.ids, sequence.imageKeys]));
  return `${hash.digest('hex').slice(0, 24)}${SUFFIX}`;
}

/** A shelved file's header, size and time, or undefined when it is not a whole file. */
async function readEntry(path: string): Promise<Entry | undefined> {
  let file: FileHandle | undefined;
  try {
    file = await open(path, 'r');
    let header: StoredHeader | undefined;
    await readSequence(file, (read) => ((header = read), false));
    if (!header) return undefined;
    const info = await file.stat();
    return { header, bytes: info.size, shelved: info.mtimeMs };
  } catch {
    return undefined; // gone meanwhile, or unreadable
  } finally {
    await file?.close();
  }
}

async function writeSequence(
  path: string,
  header: StoredHeader,
  arrays: KvRows['arrays'],
): Promise<void> {
  const json = Buffer.from(JSON.stringify(header));
  const length = Buffer.alloc(4);
  length.writeUInt32LE(json.byteLength);
  const file = await open(path, 'w');
  try {
    // One gathered write, not a whole-file buffer (that would copy hundreds of MB first) nor one
    // write an array: each await waits for the event loop, which a prefill chunk or a tower stage
    // holds for up to a second while a conversation is shelved.
    let parts = [length, json, ...arrays].map(
      (part) => new Uint8Array(part.buffer, part.byteOffset, part.byteLength),
    );
    while (parts.length > 0) {
      const { bytesWritten } = await file.writev(parts);
      if (bytesWritten === 0) throw new Error(`no bytes written to ${path}`);
      parts = afterBytes(parts, bytesWritten);
    }
  } finally {
    await file.close();
  }
}

/** What remains of `parts` once their first `count` bytes are written. */
function afterBytes(parts: Uint8Array[], count: number): Uint8Array[] {
  let skip = count;
  const rest: Uint8Array[] = [];
  for (const part of parts) {
    if (skip >= part.byteLength) skip -= part.byteLength;
    else {
      rest.push(skip > 0 ? part.subarray(skip) : part);
      skip = 0;
    }
  }
  return rest;
}

/**
 * The file's sequence when `wanted` accepts its header (called only for a whole file), else
 * undefined.
 */
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
