import { strict as assert } from 'node:assert';
import { seededRandom } from '../../server/engine/generation/prng';
import {
  applyRepetitionPenalty,
  argmax,
  candidateDistribution,
  sampleToken,
  type SamplerSettings,
} from '../../server/engine/generation/sampling';

const logitsOf = (values: number[]): Float32Array => Float32Array.from(values);

describe('sampling', () => {
  it('argmax picks the first of equal maxima', () => {
    assert.equal(argmax(logitsOf([1, 5, 5, 2])), 1);
  });

  it('repetition penalty divides positive and multiplies negative logits of seen tokens', () => {
    const logits = logitsOf([2, -2, 2, -2]);
    applyRepetitionPenalty(logits, [0, 1, 1], 2);
    assert.deepEqual([...logits], [1, -4, 2, -2]);
  });

  it('top-k keeps the k best (and ties with the k-th), highest first', () => {
    const { ids } = candidateDistribution(logitsOf([0, 3, 1, 5, 3, -1]), {
      temperature: 1,
      topK: 2,
      topP: 1,
    });
    assert.deepEqual(ids, [3, 1, 4]);
  });

  it('top-p keeps the smallest head whose mass reaches p, like HF', () => {
    // probabilities 0.5, 0.3, 0.15, 0.05
    const logits = logitsOf([0.5, 0.3, 0.15, 0.05].map(Math.log));
    const at = (topP: number) =>
      candidateDistribution(logits, { temperature: 1, topK: 0, topP }).ids;
    assert.deepEqual(at(0.5), [0]);
    assert.deepEqual(at(0.6), [0, 1]);
    assert.deepEqual(at(0.8), [0, 1]);
    assert.deepEqual(at(0.81), [0, 1, 2]);
    assert.deepEqual(at(0.99), [0, 1, 2, 3]);
    const { probs } = candidateDistribution(logits, { temperature: 1, topK: 0, topP: 0.6 });
    assert.ok(Math.abs(probs[0] - 0.5 / 0.8) < 1e-6);
  });

  it('temperature sharpens and flattens the distribution', () => {
    const logits = logitsOf([2, 1]);
    const p = (temperature: number) =>
      candidateDistribution(logits, { temperature, topK: 0, topP: 1 }).probs[0];
    assert.ok(p(0.5) > p(1));
    assert.ok(p(2) < p(1));
  });

  it('the same seed gives the same draws; another seed gives others', () => {
    const logits = Float32Array.from({ length: 1000 }, (_, i) => Math.sin(i) * 3);
    const settings: SamplerSettings = {
      greedy: false,
      temperature: 1,
      topK: 0,
      topP: 1,
      repetitionPenalty: 1,
    };
    const draw = (seed: number) => {
      const random = seededRandom(seed);
      return Array.from({ length: 50 }, () => sampleToken(logits, settings, random));
    };
    assert.deepEqual(draw(42), draw(42));
    assert.notDeepEqual(draw(42), draw(43));
  });

  it('samples in proportion to the probabilities', () => {
    const logits = logitsOf([Math.log(0.75), Math.log(0.25)]);
    const random = seededRandom(7);
    const settings = { greedy: false, temperature: 1, topK: 0, topP: 1, repetitionPenalty: 1 };
    let zeros = 0;
    for (let i = 0; i < 4000; i++) if (sampleToken(logits, settings, random) === 0) zeros++;
    assert.ok(Math.abs(zeros / 4000 - 0.75) < 0.03, `${zeros / 4000}`);
  });

  it('never draws a token outside top-k', () => {
    const logits = Float32Array.from({ length: 500 }, (_, i) => (i % 7) - i / 100);
    const random = seededRandom(1);
    const settings = { greedy: false, temperature: 1.5, topK: 3, topP: 1, repetitionPenalty: 1 };
    const allowed = new Set(candidateDistribution(logits, settings).ids);
    assert.equal(allowed.size, 3);
    for (let i = 0; i < 300; i++) assert.ok(allowed.has(sampleToken(logits, settings, random)));
  });

  it('top-p over a large vocabulary keeps exactly what sorting everything keeps', () => {
    const random = seededRandom(5);
    const logits = Float32Array.from({ length: 20000 }, () => random() * 12);
    for (const topP of [0.3, 0.8, 0.95]) {
      // Reference: HF's rule on the fully sorted distribution.
      const order = [...logits.keys()].sort((x, y) => logits[x] - logits[y]);
      const max = Math.max(...logits);
      const weights = order.map((id) => Math.exp(logits[id] - max));
      const total = weights.reduce((a, b) => a + b, 0);
      let cumulative = 0;
      const kept = new Set<number>();
      order.forEach((id, i) => {
        cumulative += weights[i] / total;
        if (cumulative > 1 - topP || i === order.length - 1) kept.add(id);
      });
      const { ids } = candidateDistribution(logits, { temperature: 1, topK: 0, topP });
      assert.equal(ids.length, kept.size, `top_p ${topP}`);
      for (const id of ids) assert.ok(kept.has(id));
    }
  });
});
