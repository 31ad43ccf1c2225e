/**
 * Tokens per second of decoding, timed from the first token so that the time to first token
 * (image encoding and prefill) does not drag the figure down.
 */
export class DecodeRate {
  private firstAt: number | undefined;
  private firstTokens = 0;

  constructor(private readonly now: () => number = () => performance.now()) {}

  /** Records that `tokens` have arrived so far and returns the rate since the first one. */
  update(tokens: number): number {
    const now = this.now();
    if (this.firstAt === undefined) {
      this.firstAt = now;
      this.firstTokens = tokens;
      return 0;
    }
    const seconds = (now - this.firstAt) / 1000;
    return seconds > 0 ? (tokens - this.firstTokens) / seconds : 0;
  }
}
