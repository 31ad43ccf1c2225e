/**
 * When to unload the local model: once nothing has used the server for a while, so that a
 * model that sat unused since the morning does not keep gigabytes of memory (or GPU memory).
 * Uses hold it (a generation, a prompt read ahead); they may overlap. Free of `vscode`, so it
 * is tested alone; the supervisor starts it when the server is ready and cancels it when the
 * server stops.
 */
export interface Hold {
  dispose(): void;
}

/** The timer functions it uses (tests pass a clock of their own). */
export interface Timers {
  setTimeout(callback: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

const GLOBAL_TIMERS: Timers = {
  setTimeout: (callback, ms) => setTimeout(callback, ms),
  clearTimeout: (handle) => clearTimeout(handle as NodeJS.Timeout),
};

export class IdleTimer {
  private holds = 0;
  private counting = false;
  private timer: unknown;

  /**
   * `delayMs` is read each time a quiet spell begins (a changed setting applies from the next
   * one); 0 or less never calls `onIdle`.
   */
  constructor(
    private readonly delayMs: () => number,
    private readonly onIdle: () => void,
    private readonly timers: Timers = GLOBAL_TIMERS,
  ) {}

  /** The server is ready: count quiet time from now (or from the end of the current holds). */
  start(): void {
    this.counting = true;
    this.schedule();
  }

  /** The server stopped: nothing to unload. */
  cancel(): void {
    this.counting = false;
    this.timers.clearTimeout(this.timer);
  }

  /** While held, the countdown waits; releasing the last hold starts it again. */
  hold(): Hold {
    this.holds++;
    this.timers.clearTimeout(this.timer);
    let released = false;
    return {
      dispose: () => {
        if (released) return;
        released = true;
        this.holds--;
        this.schedule();
      },
    };
  }

  private schedule(): void {
    this.timers.clearTimeout(this.timer);
    if (!this.counting || this.holds > 0) return;
    const ms = this.delayMs();
    if (!(ms > 0)) return;
    this.timer = this.timers.setTimeout(() => {
      if (this.counting && this.holds === 0) this.onIdle();
    }, ms);
  }
}
