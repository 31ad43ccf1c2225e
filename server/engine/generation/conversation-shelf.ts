/**
 * Conversations the decoder's KV cache held, kept on disk so that going back to one
 * does not read it again: the cache holds one conversation, and a request that starts another
 * (a new image, another generation from the history) used to drop it. On two CPU cores reading a
 * screenshot and a page of code again (3,000 tokens) takes about 25 s; its rows come back from
 * disk in under a second. The engine puts a conversation here when a request is about to drop
 * it, and when it stops (an idle unload, VS Code closed); a request that goes on from a shelved
 * conversation further than from the cache takes it back (and the file goes: the conversation
 * lives in the cache again, and is shelved again when it leaves). Files are written in the
 * background (rows on a GPU downloaded first); until then a conversation is offered, and taken
 * back, from memory. The least recently shelved go once the folder passes its bound.
 *
 * Only a shortcut: a file that is not whole, or whose rows do not fit the decoder, is dropped and
 * the prompt is prefilled; a write that fails (a full disk), or would leave the disk under
 * KEEP_FREE_BYTES free, is dropped. Only a conversation's ids and image keys vouch for it, so any
 * file that matches is correct whichever process wrote it.
 *
 * A file (array-file.ts): the conversation's { ids, imageKeys, form } and its KV rows.
 */
import { createHash } from 'node:crypto';
import { mkdir, readdir, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import type { DetachedSequence, KvRows, SavedSequence } from '../contracts';
import { arrayFile, readArrayFile, removeKilledWrites } from './array-file';
import { diskFreeBytes, roomFor } from './disk-space';

/** What the decoder held, and which images (by key) its image pads are. */
export interface StoredSequence extends SavedSequence {
  imageKeys: string[];
}

/** A conversation as it is shelved: its rows maybe still on their way from a GPU. */
export interface ShelvedSequence extends DetachedSequence {
  imageKeys: string[];
}

/** What a request is matched against: the tokens and the images a conversation holds. */
type Conversation = Pick<StoredSequence, 'ids' | 'imageKeys'>;

/** A file's own header fields: enough to decide whether to read its rows. */
export interface StoredHeader {
  ids: number[];
  imageKeys: string[];
  /** The KV cache form that wrote the rows (HostKvCache.FORM). */
  form: string;
}

/** 2 GiB: about 9,000 positions of a 2B model's fp32 cache (229 KB each). */
export const DEFAULT_SHELF_BYTES = 2 * 1024 ** 3;

const SUFFIX = '.kv';

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
  private readonly pending = new Map<string, ShelvedSequence>();
  /** Writes run one after another, after the request that shelved them has moved on. */
  private writes: Promise<void> = Promise.resolve();

  constructor(
    private readonly dir: string,
    private readonly maxBytes = DEFAULT_SHELF_BYTES,
    /** Bytes the disk has free for a write (a test's stand-in for a nearly full disk). */
    private readonly freeBytes = diskFreeBytes,
  ) {}

  /** Queues the conversation's write; `flushed` resolves once it is written or dropped. */
  put(sequence: ShelvedSequence): void {
    const name = nameOf(sequence);
    // A failed download is handled where the rows are awaited (take, store), maybe much later.
    Promise.resolve(sequence.rows).catch(() => undefined);
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
  async best(score: (held: Conversation) => number): Promise<{ name: string; score: number }> {
    let best = { name: '', score: 0 };
    const consider = (name: string, held: Conversation) => {
      const value = score(held);
      if (value > best.score) best = { name, score: value };
    };
    for (const [name, sequence] of this.pending) consider(name, sequence);
    const index = await this.entries().catch(() => new Map<string, Entry>());
    for (const [name, entry] of index) if (!this.pending.has(name)) consider(name, entry.header);
    return best;
  }

  /**
   * A shelved conversation, taken off the shelf (its file deleted); undefined if unreadable (or
   * its download from the GPU failed).
   */
  async take(name: string): Promise<StoredSequence | undefined> {
    const waiting = this.pending.get(name);
    if (waiting) {
      // Not written yet: its write is dropped (store checks), or its file deleted once written.
      this.pending.delete(name);
      const rows = await Promise.resolve(waiting.rows).catch(() => undefined);
      return rows && { ...waiting, rows };
    }
    const index = await this.entries();
    if (!index.delete(name)) return undefined;
    const path = join(this.dir, name);
    const read = await readArrayFile(path, parseHeader);
    await unlink(path).catch(() => undefined);
    if (typeof read === 'string') return undefined; // another process took it, or unreadable
    const { ids, imageKeys, form, type } = read.header;
    return { ids, imageKeys, rows: { form, type, arrays: read.arrays } };
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
    for (const name of names.filter((entry) => entry.endsWith(SUFFIX))) {
      const path = join(this.dir, name);
      const entry = await readEntry(path);
      if (entry) index.set(name, entry);
      else await unlink(path).catch(() => undefined);
    }
    await removeKilledWrites(this.dir, names);
    return index;
  }

  private async store(name: string, sequence: ShelvedSequence): Promise<void> {
    // Awaited first, so that flushed() also means no read from a GPU is still running.
    const rows = await sequence.rows;
    if (this.pending.get(name) !== sequence) return; // taken back before its turn
    const { arrays } = rows;
    const bytes = arrays.reduce((sum, array) => sum + array.byteLength, 0);
    if (bytes > this.maxBytes) return;
    const index = await this.entries();
    await mkdir(this.dir, { recursive: true });
    if (!(await roomFor(this.dir, bytes, this.freeBytes))) return;
    const { ids, imageKeys } = sequence;
    const path = join(this.dir, name);
    const file = arrayFile({ ids, imageKeys, form: rows.form }, rows.type, arrays);
    await file.write(path);
    if (this.pending.get(name) !== sequence) {
      await unlink(path).catch(() => undefined); // taken back while it was being written
      return;
    }
    index.set(name, {
      header: { ids, imageKeys, form: rows.form },
      bytes: file.size,
      shelved: Date.now(),
    });
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
function nameOf(sequence: Conversation): string {
  const hash = createHash('sha256').update(JSON.stringify([sequence.ids, sequence.imageKeys]));
  return `${hash.digest('hex').slice(0, 24)}${SUFFIX}`;
}

/** A shelved file's header, size and time, or undefined when it is not a whole file. */
async function readEntry(path: string): Promise<Entry | undefined> {
  const read = await readArrayFile(path, parseHeader, { headerOnly: true });
  if (typeof read === 'string') return undefined;
  const { ids, imageKeys, form } = read.header;
  return { header: { ids, imageKeys, form }, bytes: read.size, shelved: read.mtimeMs };
}

/** A conversation's own header fields, or undefined when they are not what the shelf writes. */
function parseHeader(raw: Record<string, unknown>): StoredHeader | undefined {
  const { ids, imageKeys, form } = raw;
  const valid =
    Array.isArray(ids) &&
    ids.every((n) => Number.isInteger(n) && n >= 0) &&
    Array.isArray(imageKeys) &&
    imageKeys.every((key) => typeof key === 'string') &&
    typeof form === 'string';
  return valid ? { ids: ids as number[], imageKeys: imageKeys as string[], form } : undefined;
}
