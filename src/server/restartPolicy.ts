/**
 * When to restart the local server after a crash: a few times with growing delays, and not
 * at all once it crashed too often in a short window (the language client's rule: give up
 * after 5 crashes in 3 minutes).
 */
export interface RestartPolicyOptions {
  maxCrashes: number;
  windowMs: number;
  baseDelayMs: number;
  maxDelayMs: number;
}

export const DEFAULT_RESTART_POLICY: RestartPolicyOptions = {
  maxCrashes: 5,
  windowMs: 3 * 60_000,
  baseDelayMs: 500,
  maxDelayMs: 8_000,
};

export type RestartDecision =
  { restart: true; delayMs: number } | { restart: false; crashes: number };

export class RestartPolicy {
  private crashes: number[] = [];

  constructor(private readonly options: RestartPolicyOptions = DEFAULT_RESTART_POLICY) {}

  /** Records a crash at `now` and says whether (and after how long) to restart. */
  onCrash(now: number): RestartDecision {
    this.crashes = this.crashes.filter((time) => now - time < this.options.windowMs);
    this.crashes.push(now);
    const count = this.crashes.length;
    if (count >= this.options.maxCrashes) return { restart: false, crashes: count };
    const delayMs = Math.min(this.options.baseDelayMs * 2 ** (count - 1), this.options.maxDelayMs);
    return { restart: true, delayMs };
  }

  /** A deliberate start forgets earlier crashes. */
  reset(): void {
    this.crashes = [];
  }
}
