/**
 * Sampling from a row's best logits only (what the decoder's TopK returns) picks exactly what
 * sampling from the whole row picks, whenever fitsTopLogits says the best are enough.
 */
import { strict as assert } from 'node:assert';
import { seededRandom } from '../../server/engine/generation/prng';
import {
  candidateDistribution,
  fitsTopLogits,
  sampleToken,
  type SamplerSettings,
} from '../../server/engine/generation/sampling';
import type { TopLogits } from '../../server/engine/contracts';
import { verifyDraft } from '../../server/engine/generation/speculative-accept';

/** The `k` best of a row, highest first and equal values lower id first, as the decoder returns them. */
function best(row: Float32Array, k: number): TopLogits {
  const ids = Array.from(row.keys())
    .sort((a, b) => row[b] - row[a] || a - b)
    .slice(0, k);
  return { ids, logits: Float32Array.from(ids, (id) => row[id]) };
}

function randomRow(random: () => number, vocab: number, ties: boolean): Float32Array {
  // Rounded to quarter steps when ties are wanted, so equal logits are common.
  return Float32Array.from({ length: vocab }, () => {
    const v = (random() - 0.5) * 12;
    return ties ? Math.round(v * 4) / 4 : v;
  });
}

const settings = (s: Partial<SamplerSettings>): SamplerSettings => ({
  greedy: false,
  temperature: 0.7,
  topK: 20,
  topP: 0.8,
  repetitionPenalty: 1,
  ...s,
});

describe("sampling from a row's best logits", () => {
  it('fitsTopLogits: greedy and top-k below the count fit; penalties, top-p alone and plain sampling do not', () => {
    assert.equal(fitsTopLogits(settings({ greedy: true }), 64), true);
    assert.equal(fitsTopLogits(settings({ temperature: 0 }), 64), true);
    assert.equal(fitsTopLogits(settings({ topK: 20 }), 64), true);
    assert.equal(fitsTopLogits(settings({ topK: 64 }), 64), false); // no room for ties
    assert.equal(fitsTopLogits(settings({ topK: 0 }), 64), false);
    assert.equal(fitsTopLogits(settings({ topK: 0, topP: 1 }), 64), false);
    assert.equal(fitsTopLogits(settings({ repetitionPenalty: 1.1 }), 64), false);
    assert.equal(fitsTopLogits(settings({ greedy: true, repetitionPenalty: 1.1 }), 64), false);
    assert.equal(fitsTopLogits(settings({ greedy: true }), 0), false);
  });

  for (const ties of [false, true]) {
    it(`draws the same tokens as the whole row (${ties ? 'many equal logits' : 'distinct logits'})`, () => {
      const rows = seededRandom(ties ? 7 : 3);
      const cases: Partial<SamplerSettings>[] = [
        { greedy: true },
        { topK: 1 },
        { topK: 5, topP: 1, temperature: 1.3 },
        { topK: 20, topP: 0.8, temperature: 0.7 },
        { topK: 40, topP: 0.95, temperature: 0.2 },
      ];
      for (const partial of cases) {
        const s = settings(partial);
        assert.ok(fitsTopLogits(s, 64));
        for (let trial = 0; trial < 40; trial++) {
          const row = randomRow(rows, 500, ties);
          const top = best(row, 64);
          const [a, b] = [seededRandom(trial), seededRandom(trial)];
          for (let draw = 0; draw < 5; draw++) {
            assert.equal(sampleToken(top, s, b), sampleToken(row, s, a), JSON.stringify(partial));
          }
          if (!s.greedy) {
            assert.deepEqual(candidateDistribution(top, s), candidateDistribution(row, s));
          }
        }
      }
    });
  }

  it('verifies drafts the same way (accepted, or the same replacement token)', () => {
    const rows = seededRandom(11);
    for (const s of [settings({ greedy: true }), settings({ topK: 20, topP: 0.8 })]) {
      for (let trial = 0; trial < 60; trial++) {
        const row = randomRow(rows, 300, trial % 2 === 0);
        const top = best(row, 64);
        // A likely draft, an unlikely one and one outside the best.
        for (const draft of [top.ids[0], top.ids[3], best(row, 300).ids[200]]) {
          const [a, b] = [seededRandom(trial), seededRandom(trial)];
          assert.deepEqual(verifyDraft(top, draft, s, b), verifyDraft(row, draft, s, a));
        }
      }
    }
  });
});
