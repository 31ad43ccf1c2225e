/**
 * GraphBuilder subgraphs (If branches): onnxruntime loads and runs them, each branch reads outer
 * values and constants, a constant first made inside a branch lands in the outer graph, and a
 * name used in a branch cannot be used again outside it.
 */
import assert from 'node:assert/strict';
import * as ort from 'onnxruntime-node';
import { DryRunSink } from '../../server/engine/onnx/external-data';
import { DataType, GraphBuilder, attr } from '../../server/engine/onnx/graph-builder';

/** y = x + 1 when `flag`, else x * [2, 3] (a constant of the outer graph). */
function flagGraph(): { g: GraphBuilder; model: Uint8Array } {
  const g = new GraphBuilder('if-test', new DryRunSink());
  const x = g.input('x', DataType.INT64, [2]);
  const flag = g.input('flag', DataType.BOOL, [1]);
  const outer = g.constInt64([2, 3]);
  const [y] = g.node('If', [flag], {
    attrs: {
      then_branch: attr.graph(
        g.subgraph('plus_one', (b) => [[b.op('Add', [x, b.constInt64([1, 1])]), DataType.INT64]]),
      ),
      else_branch: attr.graph(
        g.subgraph('times_outer', (b) => [[b.op('Mul', [x, outer]), DataType.INT64]]),
      ),
    },
  });
  g.node('Identity', [y], { outputs: ['y'] });
  g.output('y', DataType.INT64, [2]);
  return { g, model: g.encode([{ domain: '', version: 21 }]) };
}

describe('GraphBuilder subgraphs', () => {
  it('runs either If branch, each reading outer values and constants', async () => {
    const { model } = flagGraph();
    const session = await ort.InferenceSession.create(model, { logSeverityLevel: 3 });
    const run = async (flag: boolean) => {
      const result = await session.run({
        x: new ort.Tensor('int64', BigInt64Array.from([5n, 7n]), [2]),
        flag: new ort.Tensor('bool', Uint8Array.of(flag ? 1 : 0), [1]),
      });
      return Array.from(result.y.data as BigInt64Array, Number);
    };
    assert.deepEqual(await run(true), [6, 8]);
    assert.deepEqual(await run(false), [10, 21]);
    await session.release();
  });

  it("counts the branches' nodes and keeps value names unique across them", () => {
    const { g } = flagGraph();
    assert.equal(g.nodeCount, 4); // If, Identity and one node per branch
    const h = new GraphBuilder('names', new DryRunSink());
    const x = h.input('x', DataType.FLOAT, [1]);
    h.subgraph('branch', (b) => {
      b.node('Identity', [x], { outputs: ['taken'] });
      return [['taken', DataType.FLOAT]];
    });
    assert.throws(() => h.node('Identity', [x], { outputs: ['taken'] }), /defined twice/);
  });
});
