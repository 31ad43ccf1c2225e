/**
 * How many tokens to draft before each decoder run, from how drafts have fared so far. A
 * verification run of n tokens costs more than a step by an amount that depends on the device
 * (run-cost.ts: a fifth of a step per token on the CPU; on WebGPU 2-3 tokens cost about 1.25
 * steps, 4 to 17 about 3.5-4 and 33 about 5.3), so drafts that mostly fail make decoding slower
 * than plain steps, while drafts that mostly pass (a refinement copying its previous answer)
 * are worth drafting long.
 *
 * Drafted positions are taken as accepted with one probability a, estimated from recent runs:
 * d drafts then yield 1 + a + ... + a^d tokens for cost(1 + d) steps of time, and the planner
 * drafts the d (0 up to the most allowed) that yields the most tokens per step. The evidence
 * fades at every run, so after plain steps the estimate drifts back to the prior and drafting
 * is tried again. The plan depends only on the tokens and the device, never on timings, so a
 * seeded sampled generation stays reproducible.
 */
import { CPU_RUN_COST, type RunCost } from './run-cost';

/**
 * Prior acceptance 0.9, as weak as two drafted positions: a first run drafts 7 on the CPU
 * (prompt-lookup drafts copy text that already occurred, often right in code), one fully kept
 * run is enough for the most, and runs of rejections bring it to plain steps.
 */
const PRIOR_ACCEPTED = 1.8;
const PRIOR_TRIED = 2;
/** Weight past evidence keeps at each decoder run (about the last 15 runs count). */
const FADE = 0.93;

export class DraftPlanner {
  private accepted = 0;
  private tried = 0;

  constructor(
    private readonly most: number,
    private readonly cost: RunCost = CPU_RUN_COST,
  ) {}

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
      const rate = expected / this.cost(1 + d);
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
