import { strict as assert } from 'node:assert';
import { DraftPlanner } from '../../server/engine/generation/draft-planner';

describe('draft planner', () => {
  it('drafts 6 with no evidence and the most once a run kept all its drafts', () => {
    const planner = new DraftPlanner(8);
    assert.equal(planner.next(), 6);
    planner.record(6, 6);
    assert.equal(planner.next(), 8);
  });

  it('stops drafting when drafts keep failing, and tries again after plain steps', () => {
    const planner = new DraftPlanner(8);
    const plan: number[] = [];
    for (let run = 0; run < 12; run++) {
      const d = planner.next();
      plan.push(d);
      planner.record(d, 0);
    }
    assert.deepEqual(plan.slice(0, 3), [6, 2, 1]);
    assert.ok(plan.includes(0), `never stopped: ${plan}`);
    // Each run of plain steps is short: drafting is retried.
    assert.ok(
      plan.slice(-6).some((d) => d > 0),
      `never retried: ${plan}`,
    );
  });

  it('drafts few when about half the drafted positions pass, many when nearly all do', () => {
    const half = new DraftPlanner(8);
    for (let run = 0; run < 30; run++) half.record(2, 1);
    assert.ok(Math.abs(half.acceptance - 0.5) < 0.05, `${half.acceptance}`);
    assert.ok(half.next() >= 1 && half.next() <= 2, `${half.next()}`);
    const most = new DraftPlanner(8);
    for (let run = 0; run < 30; run++) most.record(8, run % 4 === 0 ? 7 : 8);
    assert.equal(most.next(), 8);
  });

  it('never drafts more than allowed', () => {
    const planner = new DraftPlanner(3);
    for (let run = 0; run < 5; run++) planner.record(3, 3);
    assert.equal(planner.next(), 3);
  });
});
