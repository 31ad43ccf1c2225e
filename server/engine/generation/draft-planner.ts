/**
 * How many tokens to draft before each decoder run, from how drafts have fared so far. A
 * verification run costs a step plus a share of a step per drafted token (measured: a quarter
 * on a CPU, 2B int4, 79 ms for one token and 19 ms more per draft; about a fifth on an H200),
 * so drafts that mostly fail make decoding slower than plain steps, while drafts that mostly
 * pass (a refinement copying its previous answer) are worth drafting long.
 *
 * Drafted positions are taken as accepted with one probability a, estimated from recent runs:
 * d drafts then yield 1 + a + ... + a^d tokens for 1 + DRAFT_COST * d steps of time, and the
 * planner drafts the d (0 up to the most allowed) that yields the most tokens per step. The
 * evidence fades at every run, so after plain steps the estimate drifts back to the prior and
 * drafting is tried again. The plan depends only on the tokens, never on timings, so a seeded
 * sampled generation stays reproducible.
 */

/**
 * Prior acceptance 0.9, as weak as two drafted positions: a first run drafts 6 (prompt-lookup
 * drafts copy text that already occurred, often right in code), one fully kept run is enough
 * for the most, and runs of rejections bring it to plain steps.
 */
const PRIOR_ACCEPTED = 1.8;
const PRIOR_TRIED = 2;
/** Weight past evidence keeps at each decoder run (about the last 15 runs count). */
const FADE = 0.93;
/** A drafted token's share of the cost of a one-token run. */
export const DRAFT_COST = 0.25;

export class DraftPlanner {
  private accepted = 0;
  private tried = 0;

  constructor(private readonly most: number) {}

  /** The estimated probability that a drafted position is accepted. */
  get acceptance(): number {
    return (this.accepted + PRIOR_ACCEPTED) / (this.tried + PRIOR_TRIED);
  }

  /** How many tokens to draft for the next run (0: a plain step). */
  next(): number {
    const a = this.acceptance;
    let best = 0;
    let bestRate = 1;
    let expected = 1;
    for (let d = 1; d <= this.most; d++) {
      expected += a ** d;
      const rate = expected / (1 + DRAFT_COST * d);
      if (rate > bestRate) [best, bestRate] = [d, rate];
    }
    return best;
  }

  /** Records a decoder run that verified `drafted` drafts and kept `kept` (0 and 0: a plain step). */
  record(drafted: number, kept: number): void {
    this.accepted = this.accepted * FADE + kept;
    this.tried = this.tried * FADE + kept + (kept < drafted ? 1 : 0);
  }
}
