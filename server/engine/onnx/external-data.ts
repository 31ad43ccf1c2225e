/**
 * Where large initializers go: a `.data` file beside the `.onnx` (ONNX external data), written
 * sequentially as the graph is built, or nowhere at all for dry runs that only check shapes.
 */
import { closeSync, openSync, writeSync } from 'node:fs';

export interface DataPlace {
  offset: number;
  length: number;
}

export interface ExternalDataSink {
  /** File name recorded in the model, relative to the .onnx file. */
  readonly fileName: string;
  /** True when no bytes are written (shape validation only). */
  readonly dryRun: boolean;
  write(bytes: Uint8Array): DataPlace;
  reserve(length: number): DataPlace;
  readonly bytesWritten: number;
  close(): void;
}

/**
 * Large tensors start on a 4 KiB boundary so the runtime can memory-map them; small ones on 64
 * bytes, which every SIMD kernel is happy with.
 */
function align(offset: number, length: number): number {
  const boundary = length >= 4096 ? 4096 : 64;
  return Math.ceil(offset / boundary) * boundary;
}

export class FileDataSink implements ExternalDataSink {
  readonly dryRun = false;
  private fd: number;
  private offset = 0;

  constructor(
    path: string,
    readonly fileName: string,
  ) {
    this.fd = openSync(path, 'w');
  }

  write(bytes: Uint8Array): DataPlace {
    const start = align(this.offset, bytes.byteLength);
    if (start > this.offset) writeAll(this.fd, new Uint8Array(start - this.offset));
    writeAll(this.fd, bytes);
    this.offset = start + bytes.byteLength;
    return { offset: start, length: bytes.byteLength };
  }

  reserve(length: number): DataPlace {
    return this.write(new Uint8Array(length));
  }

  get bytesWritten(): number {
    return this.offset;
  }

  close(): void {
    if (this.fd >= 0) closeSync(this.fd);
    this.fd = -1;
  }
}

/** Counts bytes as if they were written; used to validate a layout without any weights. */
export class DryRunSink implements ExternalDataSink {
  readonly dryRun = true;
  readonly fileName = 'dry-run.data';
  private offset = 0;

  write(bytes: Uint8Array): DataPlace {
    return this.reserve(bytes.byteLength);
  }

  reserve(length: number): DataPlace {
    const start = align(this.offset, length);
    this.offset = start + length;
    return { offset: start, length };
  }

  get bytesWritten(): number {
    return this.offset;
  }

  close(): void {}
}

function writeAll(fd: number, bytes: Uint8Array): void {
  let done = 0;
  while (done < bytes.byteLength) {
    done += writeSync(fd, bytes, done, bytes.byteLength - done);
  }
}
