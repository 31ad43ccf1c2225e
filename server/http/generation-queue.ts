/**
 * Runs one generation at a time, in arrival order, with a bounded number waiting. A waiting
 * job whose client goes away leaves the queue at once.
 */
import { ApiError } from './api-error';

interface Waiting {
  start: () => void;
  cancel: () => void;
}

export class GenerationQueue {
  private running = false;
  private readonly waiting: Waiting[] = [];

  constructor(
    private readonly maxWaiting: number,
    private readonly onChange: () => void = () => {},
  ) {}

  get busy(): boolean {
    return this.running;
  }

  get length(): number {
    return this.waiting.length;
  }

  /**
   * Runs `task` once the engine is free. Throws a 429 ApiError when the queue is full, and the
   * signal's reason when the signal fires while waiting.
   */
  async run<T>(task: () => Promise<T>, signal?: AbortSignal): Promise<T> {
    signal?.throwIfAborted();
    if (this.running) {
      if (this.waiting.length >= this.maxWaiting) {
        throw new ApiError(
          429,
          'rate_limit_error',
          'queue_full',
          `The server is busy: one generation is running and ${this.waiting.length} are waiting; retry later`,
        );
      }
      await this.waitForTurn(signal);
    }
    this.running = true;
    this.onChange();
    try {
      return await task();
    } finally {
      this.running = false;
      const next = this.waiting.shift();
      if (next) next.start();
      else this.onChange();
    }
  }

  private waitForTurn(signal: AbortSignal | undefined): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const entry: Waiting = {
        start: () => {
          signal?.removeEventListener('abort', entry.cancel);
          resolve();
        },
        cancel: () => {
          const index = this.waiting.indexOf(entry);
          if (index >= 0) this.waiting.splice(index, 1);
          this.onChange();
          reject(signal?.reason);
        },
      };
      signal?.addEventListener('abort', entry.cancel, { once: true });
      this.waiting.push(entry);
      this.onChange();
    });
  }
}
