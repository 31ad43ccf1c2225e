/**
 * Lazy reader for Hugging Face safetensors checkpoints: a single `model.safetensors`, or shards
 * listed in `model.safetensors.index.json`. Only the JSON headers are read up front (and checked
 * against the file sizes, so a truncated download fails here with the file and tensor named);
 * tensor bytes are read one tensor at a time, when the graph builder asks for them.
 */
import { closeSync, existsSync, openSync, readFileSync, readSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { EngineError } from '../errors';
import { float16BitsToFloat32 } from '../onnx/float16';

export type SafetensorsDtype = 'F32' | 'F16' | 'BF16';

const DTYPE_BYTES: Record<SafetensorsDtype, number> = { F32: 4, F16: 2, BF16: 2 };

export interface TensorEntry {
  name: string;
  dtype: SafetensorsDtype;
  shape: number[];
  file: string;
  /** Absolute byte offset of the tensor in `file`. */
  offset: number;
  byteLength: number;
}

export interface ShardHeader {
  file: string;
  size: number;
  /** The raw JSON header, as bytes (what the build cache hashes). */
  header: Buffer;
}

/** Refuse absurd headers before allocating: real ones are well under this. */
const MAX_HEADER_BYTES = 100 * 1024 * 1024;

export class SafetensorsCheckpoint {
  private constructor(
    readonly tensors: ReadonlyMap<string, TensorEntry>,
    readonly shards: ShardHeader[],
  ) {}

  static open(modelDir: string): SafetensorsCheckpoint {
    const files = shardFiles(modelDir);
    const tensors = new Map<string, TensorEntry>();
    const shards: ShardHeader[] = [];
    for (const file of files) {
      const { entries, shard } = readHeader(file);
      shards.push(shard);
      for (const entry of entries) {
        if (tensors.has(entry.name)) {
          throw new EngineError(
            'bad_checkpoint',
            `${file}: tensor ${entry.name} also appears in ${tensors.get(entry.name)!.file}`,
          );
        }
        tensors.set(entry.name, entry);
      }
    }
    return new SafetensorsCheckpoint(tensors, shards);
  }

  get(name: string): TensorEntry | undefined {
    return this.tensors.get(name);
  }

  /** Reads one tensor and widens it to fp32. */
  readFloat32(name: string): Float32Array {
    const entry = this.require(name);
    const raw = readBytes(entry);
    const count = entry.byteLength / DTYPE_BYTES[entry.dtype];
    if (entry.dtype === 'F32') {
      return new Float32Array(raw.buffer, raw.byteOffset, count);
    }
    const halves = new Uint16Array(raw.buffer, raw.byteOffset, count);
    const out = new Float32Array(count);
    if (entry.dtype === 'BF16') {
      const bits = new Uint32Array(out.buffer);
      for (let i = 0; i < count; i++) bits[i] = halves[i] << 16;
    } else {
      for (let i = 0; i < count; i++) out[i] = float16BitsToFloat32(halves[i]);
    }
    return out;
  }

  private require(name: string): TensorEntry {
    const entry = this.tensors.get(name);
    if (!entry) throw new EngineError('bad_checkpoint', `checkpoint has no tensor ${name}`);
    return entry;
  }
}

function shardFiles(modelDir: string): string[] {
  const single = join(modelDir, 'model.safetensors');
  const indexPath = join(modelDir, 'model.safetensors.index.json');
  if (existsSync(indexPath)) {
    let index: { weight_map?: Record<string, string> };
    try {
      index = JSON.parse(readFileSync(indexPath, 'utf8'));
    } catch (error) {
      throw new EngineError('bad_checkpoint', `Cannot parse ${indexPath}: ${String(error)}`, {
        cause: error,
      });
    }
    if (!index.weight_map || typeof index.weight_map !== 'object') {
      throw new EngineError('bad_checkpoint', `${indexPath} has no "weight_map"`);
    }
    const files = [...new Set(Object.values(index.weight_map))].sort();
    for (const file of files) {
      if (!existsSync(join(modelDir, file))) {
        throw new EngineError(
          'model_not_found',
          `${join(modelDir, file)} is listed in model.safetensors.index.json but missing: the download is incomplete`,
        );
      }
    }
    return files.map((file) => join(modelDir, file));
  }
  if (existsSync(single)) return [single];
  throw new EngineError(
    'model_not_found',
    `No model.safetensors or model.safetensors.index.json in ${modelDir}`,
  );
}

function readHeader(file: string): { entries: TensorEntry[]; shard: ShardHeader } {
  const size = statSync(file).size;
  const fd = openSync(file, 'r');
  try {
    if (size < 8) throw bad(file, `is ${size} bytes long, too short for a safetensors header`);
    const lengthBytes = Buffer.alloc(8);
    readSync(fd, lengthBytes, 0, 8, 0);
    const headerLength = Number(lengthBytes.readBigUInt64LE(0));
    if (headerLength > MAX_HEADER_BYTES || 8 + headerLength > size) {
      throw bad(
        file,
        `declares a ${headerLength}-byte header but the file is ${size} bytes: truncated or not a safetensors file`,
      );
    }
    const header = Buffer.alloc(headerLength);
    readSync(fd, header, 0, headerLength, 8);
    let json: Record<string, unknown>;
    try {
      json = JSON.parse(header.toString('utf8'));
    } catch {
      throw bad(file, 'has a header that is not valid JSON: truncated or corrupted');
    }
    const dataStart = 8 + headerLength;
    const entries: TensorEntry[] = [];
    for (const [name, value] of Object.entries(json)) {
      if (name === '__metadata__') continue;
      entries.push(entryFrom(file, name, value, dataStart, size));
    }
    return { entries, shard: { file, size, header } };
  } finally {
    closeSync(fd);
  }
}

function entryFrom(
  file: string,
  name: string,
  value: unknown,
  dataStart: number,
  size: number,
): TensorEntry {
  const info = value as { dtype?: string; shape?: number[]; data_offsets?: [number, number] };
  if (!info || !info.dtype || !Array.isArray(info.shape) || !Array.isArray(info.data_offsets)) {
    throw bad(file, `tensor ${name} has an incomplete header entry`);
  }
  if (!(info.dtype in DTYPE_BYTES)) {
    throw bad(
      file,
      `tensor ${name} has dtype ${info.dtype}; only BF16, F16 and F32 checkpoints are supported`,
    );
  }
  const dtype = info.dtype as SafetensorsDtype;
  const [begin, end] = info.data_offsets;
  const expected = info.shape.reduce((a, b) => a * b, 1) * DTYPE_BYTES[dtype];
  if (end - begin !== expected) {
    throw bad(
      file,
      `tensor ${name} [${info.shape}] ${dtype} needs ${expected} bytes but its offsets span ${end - begin}`,
    );
  }
  if (dataStart + end > size) {
    throw bad(
      file,
      `tensor ${name} ends at byte ${dataStart + end} but the file is only ${size} bytes: the file is truncated (re-download it)`,
    );
  }
  return { name, dtype, shape: info.shape, file, offset: dataStart + begin, byteLength: expected };
}

function readBytes(entry: TensorEntry): Uint8Array {
  // A fresh ArrayBuffer (not Buffer's shared pool) so typed views are aligned.
  const out = new Uint8Array(new ArrayBuffer(entry.byteLength));
  const fd = openSync(entry.file, 'r');
  try {
    let done = 0;
    while (done < entry.byteLength) {
      const chunk = Math.min(entry.byteLength - done, 1 << 30);
      const n = readSync(fd, out, done, chunk, entry.offset + done);
      if (n === 0) throw bad(entry.file, `ended while reading tensor ${entry.name}`);
      done += n;
    }
  } finally {
    closeSync(fd);
  }
  return out;
}

function bad(file: string, what: string): EngineError {
  return new EngineError('bad_checkpoint', `${file} ${what}`);
}
