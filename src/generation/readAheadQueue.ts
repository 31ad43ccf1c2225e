/**
 * Prompts read into the local server's KV cache before the request that extends them is made
 * (max_tokens 0). One is in flight at a time, and only the newest waits behind it: a prompt of
 * the same image lets the one in flight finish (it extends the image's prefix, which is the
 * costly part), a prompt of another image stops it. When a real request starts, nothing waiting
 * is sent, and a read-ahead of another image is stopped rather than waited for.
 */
import { createHash } from 'node:crypto';
import type { ChatMessage, PromptProgress } from '../openai/types';

/**
 * Sends one prompt to be read ahead; resolves (or rejects) when the server has done with it,
 * telling `onProgress` how far it has read.
 */
export type SendReadAhead = (
  messages: ChatMessage[],
  signal: AbortSignal,
  onProgress?: (progress: PromptProgress) => void,
) => Promise<void>;

interface Prompt {
  /** The image's content hash (imageKey): prompts of one image share their costly prefix. */
  image: string;
  messages: ChatMessage[];
  onProgress?: (progress: PromptProgress) => void;
  /** Settles request()'s promise: whether the server read the prompt. */
  done: (read: boolean) => void;
}

export function imageKey(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

export class ReadAheadQueue {
  private inFlight: { image: string; abort: AbortController } | undefined;
  private waiting: Prompt | undefined;

  constructor(private readonly send: SendReadAhead) {}

  /**
   * Reads `messages` ahead: now, or once the read-ahead in flight is done. Resolves true once the
   * server has read it, false when it failed, was stopped or was dropped for a newer one; never
   * rejects. `onProgress`: how far the server has read it, once it is sent.
   */
  request(
    image: string,
    messages: ChatMessage[],
    onProgress?: (progress: PromptProgress) => void,
  ): Promise<boolean> {
    this.stopUnless(image);
    this.dropWaiting();
    const done = new Promise<boolean>(
      (resolve) => (this.waiting = { image, messages, onProgress, done: resolve }),
    );
    if (!this.inFlight) this.sendWaiting();
    return done;
  }

  /** Whether a read-ahead is in flight or waiting. */
  get busy(): boolean {
    return this.inFlight !== undefined || this.waiting !== undefined;
  }

  /** A request of `image` starts: it would only wait for a read-ahead of another image. */
  settle(image: string): void {
    this.dropWaiting();
    this.stopUnless(image);
  }

  dispose(): void {
    this.dropWaiting();
    this.inFlight?.abort.abort();
  }

  private dropWaiting(): void {
    this.waiting?.done(false);
    this.waiting = undefined;
  }

  private stopUnless(image: string): void {
    if (this.inFlight && this.inFlight.image !== image) this.inFlight.abort.abort();
  }

  private sendWaiting(): void {
    const prompt = this.waiting;
    this.waiting = undefined;
    if (!prompt) return;
    const flight = { image: prompt.image, abort: new AbortController() };
    this.inFlight = flight;
    void this.send(prompt.messages, flight.abort.signal, prompt.onProgress)
      .then(
        () => true,
        () => false, // a head start only: the request reports its own errors
      )
      .then((read) => {
        if (this.inFlight === flight) this.inFlight = undefined;
        prompt.done(read);
        this.sendWaiting();
      });
  }
}
