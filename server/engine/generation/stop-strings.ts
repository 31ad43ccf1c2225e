/**
 * Watches streamed text for caller-given stop strings. Text that could still turn into a stop
 * string is held back, so a stop string never reaches the caller, even in part.
 */

export class StopStringMatcher {
  private pending = '';

  constructor(private readonly stops: readonly string[]) {}

  /**
   * Adds a delta. Returns the text safe to release and whether a stop string was found (the
   * text before it is released; everything from it on is dropped).
   */
  push(delta: string): { text: string; stopped: boolean } {
    this.pending += delta;
    const stops = this.stops.filter((s) => s.length > 0);
    if (stops.length === 0) {
      const text = this.pending;
      this.pending = '';
      return { text, stopped: false };
    }
    let first = -1;
    for (const stop of stops) {
      const at = this.pending.indexOf(stop);
      if (at >= 0 && (first < 0 || at < first)) first = at;
    }
    if (first >= 0) {
      const text = this.pending.slice(0, first);
      this.pending = '';
      return { text, stopped: true };
    }
    const hold = longestStopPrefixSuffix(this.pending, stops);
    const text = this.pending.slice(0, this.pending.length - hold);
    this.pending = this.pending.slice(this.pending.length - hold);
    return { text, stopped: false };
  }

  /** At the end of generation, held-back text was not a stop string after all. */
  flush(): string {
    const text = this.pending;
    this.pending = '';
    return text;
  }
}

/** Length of the longest suffix of `text` that is a proper prefix of some stop string. */
function longestStopPrefixSuffix(text: string, stops: readonly string[]): number {
  let best = 0;
  for (const stop of stops) {
    for (let n = Math.min(stop.length - 1, text.length); n > best; n--) {
      if (text.endsWith(stop.slice(0, n))) {
        best = n;
        break;
      }
    }
  }
  return best;
}
