import { strict as assert } from 'node:assert';
import { DraftPlanner } from '../../server/engine/generation/draft-planner';
import {
  CPU_RUN_COST,
  WEBGPU_RUN_COST,
  runCostFor,
  runCostThrough,
} from '../../server/engine/generation/run-cost';

describe('draft planner', () => {
  it('drafts 7 with no evidence and the most once a run kept all its drafts', () => {
    const planner = new DraftPlanner(8);
    assert.equal(planner.next(), 7);
    planner.record(7, 7);
    assert.equal(planner.next(), 8);
  });

  it('stops drafting when drafts keep failing, and tries again after plain steps', () => {
    const planner = new DraftPlanner(8);
    const plan: number[] = [];
    for (let run = 0; run < 24; run++) {
      const d = planner.next();
      plan.push(d);
      planner.record(d, 0);
    }
    assert.deepEqual(plan.slice(0, 3), [7, 2, 1]);
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

  it('weighs drafts by the device: on WebGPU, where 4+ tokens cost ~3.5 steps, short drafts unless nearly all pass', () => {
    const settled = (cost: typeof CPU_RUN_COST, kept: (run: number) => number, drafted = 2) => {
      const planner = new DraftPlanner(16, cost);
      for (let run = 0; run < 40; run++) planner.record(drafted, kept(run));
      return planner;
    };
    // Four in five drafted positions pass.
    const cpu = settled(CPU_RUN_COST, (run) => (run % 5 === 0 ? 0 : 1), 1);
    const gpu = settled(WEBGPU_RUN_COST, (run) => (run % 5 === 0 ? 0 : 1), 1);
    assert.ok(Math.abs(gpu.acceptance - 0.8) < 0.05, `${gpu.acceptance}`);
    assert.ok(cpu.next() >= 3, `cpu ${cpu.next()}`);
    assert.equal(gpu.next(), 2);
    // A refinement copying its previous answer: everything passes.
    assert.equal(settled(WEBGPU_RUN_COST, () => 8, 8).next(), 16);
  });
});

describe('decoder run cost', () => {
  it('runs through the measured points, between them on straight lines, past the last by its slope', () => {
    const cost = runCostThrough([
      [1, 1],
      [3, 2],
      [5, 6],
    ]);
    assert.deepEqual([1, 2, 3, 4, 5, 7].map(cost), [1, 1.5, 2, 4, 6, 10]);
    assert.equal(CPU_RUN_COST(17), 3.91);
    assert.equal(WEBGPU_RUN_COST(1), 1);
    assert.ok(WEBGPU_RUN_COST(4) > 2 * WEBGPU_RUN_COST(3));
    assert.equal(runCostFor('webgpu'), WEBGPU_RUN_COST);
    assert.equal(runCostFor('cpu'), CPU_RUN_COST);
  });

  it('needs a one-token run of cost 1 and a second point', () => {
    assert.throws(() => runCostThrough([[1, 1]]), /needs \[1, 1\]/);
    assert.throws(
      () =>
        runCostThrough([
          [2, 1],
          [3, 2],
        ]),
      /needs \[1, 1\]/,
    );
  });
});
