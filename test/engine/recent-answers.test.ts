/** The latest answers prompt lookup may copy from, and drafting from them. */
import { strict as assert } from 'node:assert';
import { draftTokens } from '../../server/engine/generation/prompt-lookup';
import { RecentAnswers } from '../../server/engine/generation/recent-answers';

describe('recent answers', () => {
  it('keeps the latest answers within its count and token bounds, oldest first', () => {
    const answers = new RecentAnswers(2, 10);
    answers.add([1, 2, 3]);
    answers.add([4, 5, 6]);
    answers.add([7, 8, 9]);
    assert.deepEqual(answers.list, [
      [4, 5, 6],
      [7, 8, 9],
    ]);
    answers.add([10, 11, 12, 13, 14, 15, 16, 17]);
    // 3 + 8 tokens exceed 10: the oldest goes
    assert.deepEqual(answers.list, [[10, 11, 12, 13, 14, 15, 16, 17]]);
    // longer than the whole bound: its end is kept
    answers.add(Array.from({ length: 15 }, (_, i) => i));
    assert.deepEqual(answers.list, [[5, 6, 7, 8, 9, 10, 11, 12, 13, 14]]);
    answers.add([99]);
    assert.equal(answers.list.length, 1, 'a one-token answer has nothing to continue');
  });
});

describe('prompt lookup with earlier answers', () => {
  const settings = { maxNgram: 4, minNgram: 2, draftTokens: 4 };

  it('copies from an earlier answer when the sequence has no match, up to its end', () => {
    assert.deepEqual(draftTokens([9, 1, 2], settings, 4, [[5, 1, 2, 3, 4, 5, 6]]), [3, 4, 5, 6]);
    assert.deepEqual(draftTokens([9, 1, 2], settings, 4, [[1, 2, 3]]), [3]);
    // a match at an answer's very end has nothing after it
    assert.deepEqual(draftTokens([9, 1, 2], settings, 4, [[7, 1, 2]]), []);
  });

  it('only when the sequence has no match, and then the longest, the latest among equals', () => {
    const tokens = [1, 2, 7, 8, 3, 1, 2];
    // the sequence's own [1, 2] -> 7, 8 stands, though an answer matches [3, 1, 2]
    assert.deepEqual(draftTokens(tokens, settings, 4, [[3, 1, 2, 5, 5]]), [7, 8, 3, 1]);
    // no match in [9, 3, 1, 2] itself: the longer of two answers' matches, then the later one
    const alone = [9, 3, 1, 2];
    assert.deepEqual(
      draftTokens(alone, settings, 4, [
        [3, 1, 2, 5],
        [0, 1, 2, 6],
      ]),
      [5],
    );
    assert.deepEqual(
      draftTokens(alone, settings, 4, [
        [3, 1, 2, 4],
        [3, 1, 2, 6],
      ]),
      [6],
    );
  });
});
