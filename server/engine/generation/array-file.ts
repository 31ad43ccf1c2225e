/**
 * The file format of the engine's disk caches (vision outputs, shelved conversations): a
 * little-endian uint32 header length, the header as JSON (the caller's fields plus the arrays'
 * element `type` and `lengths`), then the arrays' values in order (4 bytes each for float32, 2
 * for float16, which travels as raw Uint16 bits). A file is written under a temporary name and
 * renamed, so that no reader sees half a file under the real name.
 */
import { open, rename, stat, unlink, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';

export type ArrayType = 'float32' | 'float16';
export type TypedRows = Float32Array | Uint16Array;

/** What every header holds beside the caller's own fields. */
export interface ArrayLayout {
  type: ArrayType;
  /** Values in each array. */
  lengths: number[];
}

export interface ArrayFile<H> {
  header: H & ArrayLayout;
  /** Each in a buffer of its own; empty when only the header was read. */
  arrays: TypedRows[];
  /** The file's bytes and last modification (ms). */
  size: number;
  mtimeMs: number;
}

/** A file ready to write: its size known first, for a cache to weigh against its bounds. */
export interface PreparedArrayFile {
  size: number;
  /** Writes it to `path` (whole, then renamed); a failed write leaves no file and rejects. */
  write(path: string): Promise<void>;
}

/** `arrays` behind `header`, as a file of this format. */
export function arrayFile(
  header: object,
  type: ArrayType,
  arrays: readonly TypedRows[],
): PreparedArrayFile {
  const layout: ArrayLayout = { type, lengths: arrays.map((array) => array.length) };
  const json = Buffer.from(JSON.stringify({ ...header, ...layout }));
  const length = Buffer.alloc(4);
  length.writeUInt32LE(json.byteLength);
  const parts = [length, json, ...arrays].map(
    (part) => new Uint8Array(part.buffer, part.byteOffset, part.byteLength),
  );
  return {
    size: parts.reduce((sum, part) => sum + part.byteLength, 0),
    write: (path) => writeParts(path, parts),
  };
}

/** A temporary file this old belongs to a write that was killed, not to one in progress. */
const KILLED_WRITE_MS = 10 * 60_000;

/**
 * Deletes the temporary files among `names` (in `dir`) that writes killed midway left behind;
 * recent ones stay, since another process may be writing them now.
 */
export async function removeKilledWrites(dir: string, names: readonly string[]): Promise<void> {
  for (const name of names) {
    if (!name.endsWith('.tmp')) continue;
    const path = join(dir, name);
    const info = await stat(path).catch(() => undefined);
    if (info && Date.now() - info.mtimeMs > KILLED_WRITE_MS) {
      await unlink(path).catch(() => undefined);
    }
  }
}

async function writeParts(path: string, all: Uint8Array[]): Promise<void> {
  const temporary = `${path}.${process.pid}.tmp`;
  let parts = all;
  try {
    const file = await open(temporary, 'w');
    try {
      // One gathered write, not a whole-file buffer (that would copy hundreds of MB first) nor
      // one write an array: each await waits for the event loop, which a prefill chunk or a
      // tower stage holds for up to a second while a file is written in the background.
      while (parts.length > 0) {
        const { bytesWritten } = await file.writev(parts);
        if (bytesWritten === 0) throw new Error(`no bytes written to ${temporary}`);
        parts = afterBytes(parts, bytesWritten);
      }
    } finally {
      await file.close();
    }
    await rename(temporary, path);
  } catch (error) {
    await unlink(temporary).catch(() => undefined);
    throw error;
  }
}

/**
 * The file at `path`: its header (the caller's fields checked by `parse`) and, unless
 * `headerOnly`, its arrays. 'missing' when there is no such file; 'broken' when it is not a
 * whole file of this format (cut short, another format, a header `parse` refuses).
 */
export async function readArrayFile<H>(
  path: string,
  parse: (header: Record<string, unknown>) => H | undefined,
  options: { headerOnly?: boolean } = {},
): Promise<ArrayFile<H> | 'missing' | 'broken'> {
  let file: FileHandle;
  try {
    file = await open(path, 'r');
  } catch {
    return 'missing';
  }
  try {
    return (await readOpen(file, parse, options.headerOnly ?? false)) ?? 'broken';
  } catch {
    return 'broken';
  } finally {
    await file.close();
  }
}

async function readOpen<H>(
  file: FileHandle,
  parse: (header: Record<string, unknown>) => H | undefined,
  headerOnly: boolean,
): Promise<ArrayFile<H> | undefined> {
  const { size, mtimeMs } = await file.stat();
  const start = await readExactly(file, 4, 0);
  if (!start) return undefined;
  const headerLength = Buffer.from(start).readUInt32LE(0);
  if (headerLength > size - 4) return undefined;
  const json = await readExactly(file, headerLength, 4);
  if (!json) return undefined;
  let raw: Record<string, unknown>;
  try {
    raw = JSON.parse(Buffer.from(json).toString('utf8')) as Record<string, unknown>;
  } catch {
    return undefined;
  }
  const layout = parseLayout(raw);
  const own = raw && typeof raw === 'object' ? parse(raw) : undefined;
  if (!layout || !own) return undefined;
  const elementBytes = layout.type === 'float16' ? 2 : 4;
  const dataBytes = layout.lengths.reduce((sum, n) => sum + n * elementBytes, 0);
  if (size !== 4 + headerLength + dataBytes) return undefined;
  const header = { ...own, ...layout };
  if (headerOnly) return { header, arrays: [], size, mtimeMs };
  const arrays: TypedRows[] = [];
  let position = 4 + headerLength;
  for (const n of layout.lengths) {
    const array = layout.type === 'float16' ? new Uint16Array(n) : new Float32Array(n);
    const bytes = new Uint8Array(array.buffer);
    if (!(await readExactly(file, bytes.byteLength, position, bytes))) return undefined;
    arrays.push(array);
    position += bytes.byteLength;
  }
  return { header, arrays, size, mtimeMs };
}

function parseLayout(raw: Record<string, unknown> | null): ArrayLayout | undefined {
  const type = raw?.type;
  const lengths = raw?.lengths;
  const valid =
    (type === 'float32' || type === 'float16') &&
    Array.isArray(lengths) &&
    lengths.every((n) => Number.isInteger(n) && n >= 0);
  return valid ? { type, lengths: lengths as number[] } : undefined;
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
