/**
 * The bicubic resize spread over worker threads. A screenshot larger than the engine's pixel cap
 * (a 1080p or Retina one) is downscaled before the vision tower; on one thread that took
 * 240-400 ms on this project's 2-core VM, where an H200 ran the whole vision tower for a
 * 1280x800 screenshot in 264 ms. Rows are independent in each pass, so
 * each pass is cut into one band of rows per worker; the pixels live in SharedArrayBuffers, so
 * only the input is copied, once. The workers run the same row functions as
 * resizeBicubicAntialiased, so the result is identical byte for byte.
 *
 * Where workers cannot run (the worker file missing from a bundle, a worker failing) the resize
 * runs on the calling thread, the same result, and a warning says why, once.
 */
import { existsSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { dirname, extname, join } from 'node:path';
import { Worker } from 'node:worker_threads';
import { type ResizePass, type RowRange, planResize, resizeBicubicAntialiased } from './bicubic';
import type { ResizeReply, ResizeTask } from './resize-worker';

/** Below this many output bytes (about a 300x300 RGB image) messaging costs more than it saves. */
const MIN_PARALLEL_BYTES = 1 << 18;

type ResizeArguments = Parameters<typeof resizeBicubicAntialiased>;

/** More workers than this gain little: each band is already a few milliseconds. */
const MAX_WORKERS = 8;

export interface WorkerEntry {
  file: string;
  execArgv?: string[];
}

/**
 * The worker script beside `moduleFile` (this module's file at run time): resize-worker.js (or
 * .cjs) beside a bundle, whose build makes it its own entry; resize-worker.ts when running from
 * source under tsx, which the worker then needs too.
 */
export function workerEntryBeside(moduleFile: string): WorkerEntry {
  const extension = extname(moduleFile);
  const file = join(dirname(moduleFile), `resize-worker${extension}`);
  return extension === '.ts' ? { file, execArgv: ['--require', 'tsx/cjs'] } : { file };
}

/** Splits [0, count) into at most `parts` contiguous bands of near-equal size. */
export function splitRows(count: number, parts: number): RowRange[] {
  const bands = Math.max(1, Math.min(parts, count));
  return Array.from({ length: bands }, (_, i) => ({
    from: Math.floor((count * i) / bands),
    to: Math.floor((count * (i + 1)) / bands),
  }));
}

export class ResizeWorkers {
  private workers: Worker[] = [];
  private failure?: Error;
  /** Resizes run one after another: each one uses every worker. */
  private queue: Promise<unknown> = Promise.resolve();

  constructor(
    readonly size = Math.min(MAX_WORKERS, availableParallelism()),
    private readonly entry: WorkerEntry = workerEntryBeside(__filename),
  ) {}

  /** resizeBicubicAntialiased's result (same arguments), computed by the workers where that pays. */
  resize(...args: ResizeArguments): Promise<Uint8Array> {
    const [, width, height, channels, outWidth, outHeight] = args;
    const small = outWidth * Math.max(height, outHeight) * channels < MIN_PARALLEL_BYTES;
    if ((outWidth === width && outHeight === height) || small || this.size < 2 || this.failure) {
      return Promise.resolve(resizeBicubicAntialiased(...args));
    }
    const job = this.queue.then(() =>
      this.resizeInWorkers(args).catch((error: Error) => {
        this.fail(error);
        return resizeBicubicAntialiased(...args);
      }),
    );
    this.queue = job.catch(() => undefined);
    return job;
  }

  /** Stops the workers; a later resize starts them again. */
  async close(): Promise<void> {
    const workers = this.workers;
    this.workers = [];
    await Promise.all(workers.map((worker) => worker.terminate()));
  }

  private async resizeInWorkers([
    pixels,
    width,
    height,
    channels,
    outWidth,
    outHeight,
  ]: ResizeArguments): Promise<Uint8Array> {
    const { passes, result } = planResize(
      shared(pixels),
      [width, height, channels],
      [outWidth, outHeight],
      (bytes) => new SharedArrayBuffer(bytes),
    );
    for (const pass of passes) await this.runPass(pass);
    return new Uint8Array(result);
  }

  /** One pass: a band of its rows to each worker, resolved when every band is done. */
  private async runPass(pass: ResizePass<SharedArrayBuffer>): Promise<void> {
    const workers = this.workersReady();
    // Referenced only while they work, so that an idle pool never keeps the process alive.
    workers.forEach((worker) => worker.ref());
    try {
      await Promise.all(
        splitRows(pass.rows, workers.length).map((rows, i) => ask(workers[i], { pass, rows })),
      );
    } finally {
      workers.forEach((worker) => worker.unref());
    }
  }

  /**
   * Starts the workers ahead of the first resize (the engine does so while its model loads), so
   * that the first screenshot does not wait for them. Never throws: a failure is the fallback's.
   */
  start(): void {
    if (this.size < 2 || this.failure) return;
    try {
      this.workersReady();
    } catch (error) {
      this.fail(error as Error);
    }
  }

  private workersReady(): Worker[] {
    if (this.workers.length > 0) return this.workers;
    if (!existsSync(this.entry.file)) {
      throw new Error(`the resize worker ${this.entry.file} is missing`);
    }
    const workers = Array.from({ length: this.size }, () => {
      const worker = new Worker(this.entry.file, { execArgv: this.entry.execArgv });
      worker.unref();
      // A worker that dies between resizes would leave the next one waiting for it forever.
      worker.on('error', () => undefined);
      worker.once('exit', (code) => {
        if (this.workers === workers) this.fail(new Error(`a resize worker exited (code ${code})`));
      });
      return worker;
    });
    this.workers = workers;
    return workers;
  }

  private fail(error: Error): void {
    if (this.failure) return;
    this.failure = error;
    void this.close();
    process.emitWarning(
      `Image resizing runs on one thread from now on: ${error.message}`,
      'DesignToCodeWarning',
    );
  }
}

/** The task's answer from one worker; rejects if the worker fails or exits instead. */
function ask(worker: Worker, task: ResizeTask): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    const cleanUp = () => {
      worker.off('message', onMessage);
      worker.off('error', onError);
      worker.off('exit', onExit);
    };
    const onMessage = (reply: ResizeReply) => {
      cleanUp();
      if (reply.ok) resolve();
      else reject(new Error(`a resize worker failed: ${reply.message}`));
    };
    const onError = (error: Error) => {
      cleanUp();
      reject(new Error(`a resize worker failed: ${error.message}`));
    };
    const onExit = (code: number) => {
      cleanUp();
      reject(new Error(`a resize worker exited (code ${code})`));
    };
    worker.on('message', onMessage);
    worker.on('error', onError);
    worker.on('exit', onExit);
    worker.postMessage(task);
  });
}

/** The pixels in shared memory (one copy), which every worker can read. */
function shared(pixels: Uint8Array): SharedArrayBuffer {
  const buffer = new SharedArrayBuffer(pixels.length);
  new Uint8Array(buffer).set(pixels);
  return buffer;
}

let processWide: ResizeWorkers | undefined;

/** The pool the engine's preprocessing uses, created on first use (loadEngine starts it). */
export function sharedResizeWorkers(): ResizeWorkers {
  processWide ??= new ResizeWorkers();
  return processWide;
}
