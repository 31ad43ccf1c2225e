import { strict as assert } from 'node:assert';
import { computeRopeIndex, decodePosition } from '../../server/engine/positions/rope-index';

const PAD = 151655;

describe('MRoPE rope index (spec §4)', () => {
  it('gives plain 0..S-1 positions and delta 0 for text', () => {
    const { positionIds, ropeDelta } = computeRopeIndex([1, 2, 3, 4], [], PAD, 2);
    assert.deepEqual(positionIds, [
      [0, 1, 2, 3],
      [0, 1, 2, 3],
      [0, 1, 2, 3],
    ]);
    assert.equal(ropeDelta, 0);
  });

  it('matches the spec worked example (4 text, a 15x20 merged grid, L text)', () => {
    const L = 5;
    const ids = [1, 2, 3, 4, ...new Array(300).fill(PAD), ...new Array(L).fill(7)];
    const { positionIds, ropeDelta } = computeRopeIndex(ids, [[1, 30, 40]], PAD, 2);
    const [t, h, w] = positionIds;
    assert.equal(t[4], 4);
    assert.equal(t[303], 4);
    assert.equal(h[4], 4);
    assert.equal(h[303], 18);
    assert.equal(w[4], 4);
    assert.equal(w[4 + 19], 23);
    assert.equal(h[4 + 20], 5, 'second merged row');
    assert.equal(t[304], 24, 'text after the image starts at 24');
    assert.equal(ropeDelta, -280);
    assert.equal(decodePosition(ids.length, ropeDelta), 24 + L);
  });

  it('continues after each of several images from the largest position + 1', () => {
    // text(2) img A 2x3 merged, text(1), img B 3x1 merged, text(2)
    const ids = [9, 9, ...new Array(6).fill(PAD), 8, ...new Array(3).fill(PAD), 7, 7];
    const { positionIds, ropeDelta } = computeRopeIndex(
      ids,
      [
        [1, 4, 6],
        [1, 6, 2],
      ],
      PAD,
      2,
    );
    assert.deepEqual(positionIds[0], [0, 1, 2, 2, 2, 2, 2, 2, 5, 6, 6, 6, 9, 10]);
    assert.deepEqual(positionIds[1], [0, 1, 2, 2, 2, 3, 3, 3, 5, 6, 7, 8, 9, 10]);
    assert.deepEqual(positionIds[2], [0, 1, 2, 3, 4, 2, 3, 4, 5, 6, 6, 6, 9, 10]);
    assert.equal(ropeDelta, 11 - ids.length);
  });
});
