/**
 * Writes a safetensors file tensor by tensor (used to generate checkpoints of real size with
 * random weights for benchmarks, and small variants for tests). Values are produced one tensor
 * at a time by `fill`, so a multi-gigabyte file never sits in memory.
 */
import { closeSync, openSync, writeSync } from 'node:fs';
import type { SafetensorsDtype } from './safetensors';

export interface TensorSpec {
  name: string;
  shape: number[];
}

const BYTES: Record<SafetensorsDtype, number> = { F32: 4, F16: 2, BF16: 2 };

export function writeSafetensors(
  path: string,
  tensors: TensorSpec[],
  dtype: SafetensorsDtype,
  fill: (spec: TensorSpec, out: Float32Array) => void,
  encodeHalf?: (values: Float32Array) => Uint16Array,
): void {
  let offset = 0;
  const header: Record<string, unknown> = { __metadata__: { format: 'pt' } };
  for (const t of tensors) {
    const length = t.shape.reduce((a, b) => a * b, 1) * BYTES[dtype];
    header[t.name] = { dtype, shape: t.shape, data_offsets: [offset, offset + length] };
    offset += length;
  }
  let json = JSON.stringify(header);
  json += ' '.repeat((8 - (json.length % 8)) % 8); // keep tensor data 8-byte aligned
  const headerBytes = Buffer.from(json, 'utf8');
  const fd = openSync(path, 'w');
  try {
    const length = Buffer.alloc(8);
    length.writeBigUInt64LE(BigInt(headerBytes.length));
    writeSync(fd, length);
    writeSync(fd, headerBytes);
    for (const t of tensors) {
      const values = new Float32Array(t.shape.reduce((a, b) => a * b, 1));
      fill(t, values);
      let bytes: Uint8Array;
      if (dtype === 'F32') bytes = new Uint8Array(values.buffer);
      else if (dtype === 'BF16') bytes = new Uint8Array(toBfloat16(values).buffer);
      else {
        if (!encodeHalf) throw new Error('F16 output needs an fp16 encoder');
        bytes = new Uint8Array(encodeHalf(values).buffer);
      }
      let done = 0;
      while (done < bytes.length) done += writeSync(fd, bytes, done, bytes.length - done);
    }
  } finally {
    closeSync(fd);
  }
}

/** fp32 -> bf16 with round-to-nearest-even (what torch's .to(bfloat16) does). */
export function toBfloat16(values: Float32Array): Uint16Array {
  const bits = new Uint32Array(values.buffer, values.byteOffset, values.length);
  const out = new Uint16Array(values.length);
  for (let i = 0; i < bits.length; i++) {
    const x = bits[i];
    out[i] = (x + 0x7fff + ((x >>> 16) & 1)) >>> 16;
  }
  return out;
}
