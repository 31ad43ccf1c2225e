/**
 * Where large initializers go: a `.data` file beside the `.onnx` (ONNX external data), written
 * sequentially as the graph is built, or nowhere at all for dry runs that only check shapes.
 */
import { createHash } from 'node:crypto';
import { closeSync, openSync, writeSync } from 'node:fs';

export interface DataPlace {
  offset: number;
  length: number;
}

/** A tensor as written to a .data file: which (name, type, dims), where, a digest of its bytes. */
export interface WrittenPlace extends DataPlace {
  tensor: string;
  digest: string;
}

function digest(bytes: Uint8Array): string {
  return createHash('md5').update(bytes).digest('base64');
}

export interface ExternalDataSink {
  /** File name recorded in the model, relative to the .onnx file. */
  readonly fileName: string;
  /** True when no bytes are written (shape validation only). */
  readonly dryRun: boolean;
  /** `tensor` names the tensor: its name, element type and dims (graph-builder.ts tensorKey). */
  write(bytes: Uint8Array, tensor: string): DataPlace;
  reserve(length: number): DataPlace;
  /**
   * Where a checkpoint weight already lies, when a sink knows without its bytes (ReplayDataSink):
   * the builder then never computes them.
   */
  place?(tensor: string, length: number): DataPlace;
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

  /** `written`: where each tensor went is appended there, for a ReplayDataSink. */
  constructor(
    path: string,
    readonly fileName: string,
    private readonly written?: WrittenPlace[],
  ) {
    this.fd = openSync(path, 'w');
  }

  write(bytes: Uint8Array, tensor: string): DataPlace {
    const start = align(this.offset, bytes.byteLength);
    if (start > this.offset) writeAll(this.fd, new Uint8Array(start - this.offset));
    writeAll(this.fd, bytes);
    this.offset = start + bytes.byteLength;
    this.written?.push({ tensor, offset: start, length: bytes.byteLength, digest: digest(bytes) });
    return { offset: start, length: bytes.byteLength };
  }

  reserve(length: number): DataPlace {
    return this.write(new Uint8Array(length), 'reserved');
  }

  get bytesWritten(): number {
    return this.offset;
  }

  close(): void {
    if (this.fd >= 0) closeSync(this.fd);
    this.fd = -1;
  }
}

/**
 * Writes nothing: a second graph whose weights are a first graph's, in the same order, points
 * at the first graph's .data file (`fileName`, its tensors in `written`). Each tensor must be the
 * one written at its turn (name, type, dims and length), so a graph that differs fails its build
 * instead of reading wrong weights. Checkpoint weights are placed by that alone (`place`): their
 * bytes follow from the checkpoint and the tensor's name, and computing them again would quantise
 * the whole model once more per graph (about 30 s for a 2B model). Generated tensors (`write`)
 * are checked by their digest too.
 */
export class ReplayDataSink implements ExternalDataSink {
  readonly dryRun = false;
  readonly bytesWritten = 0;
  private next = 0;

  constructor(
    readonly fileName: string,
    private readonly written: readonly WrittenPlace[],
  ) {}

  write(bytes: Uint8Array, tensor: string): DataPlace {
    return this.take(tensor, bytes.byteLength, bytes);
  }

  place(tensor: string, length: number): DataPlace {
    return this.take(tensor, length);
  }

  reserve(length: number): DataPlace {
    return this.write(new Uint8Array(length), 'reserved');
  }

  private take(tensor: string, length: number, bytes?: Uint8Array): DataPlace {
    const place = this.written[this.next];
    if (
      !place ||
      place.tensor !== tensor ||
      place.length !== length ||
      (bytes && place.digest !== digest(bytes))
    ) {
      throw new Error(
        `tensor ${this.next} (${tensor}, ${length} bytes) is not the one ${this.fileName} holds at that turn${place ? ` (${place.tensor}, ${place.length} bytes)` : ''}`,
      );
    }
    this.next++;
    return { offset: place.offset, length: place.length };
  }

  /** Throws unless every tensor of the first graph was used. */
  assertComplete(): void {
    if (this.next !== this.written.length) {
      throw new Error(
        `${this.next} of the ${this.written.length} tensors in ${this.fileName} used`,
      );
    }
  }

  close(): void {}
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
