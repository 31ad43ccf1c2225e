/**
 * External weight files: a second graph with a first graph's weights (a graph-capture build's
 * step and prompt form) points at the first's .data file, each tensor checked against the one
 * written at its turn, so a graph whose weights differ fails its build; checkpoint weights are
 * placed by name without their bytes being computed again.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  FileDataSink,
  ReplayDataSink,
  type WrittenPlace,
} from '../../server/engine/onnx/external-data';
import { DataType, GraphBuilder } from '../../server/engine/onnx/graph-builder';

describe('external data shared by two graphs', () => {
  let dir: string;
  before(() => (dir = mkdtempSync(join(tmpdir(), 'd2c-data-'))));
  after(() => rmSync(dir, { recursive: true, force: true }));

  const tensors = [new Uint8Array(5000).fill(7), new Uint8Array(100).fill(3)];
  const names = ['w UINT8 [5000]', 'c UINT8 [100]'];
  function writeFirst(): WrittenPlace[] {
    const written: WrittenPlace[] = [];
    const sink = new FileDataSink(join(dir, 'a.data'), 'a.data', written);
    tensors.forEach((t, i) => sink.write(t, names[i]));
    sink.close();
    return written;
  }

  it('gives the second graph the places the first graph wrote, and writes nothing', () => {
    const written = writeFirst();
    const replay = new ReplayDataSink('a.data', written);
    const places = [replay.place(names[0], 5000), replay.write(tensors[1], names[1])];
    replay.assertComplete();
    assert.equal(replay.bytesWritten, 0);
    const file = readFileSync(join(dir, 'a.data'));
    places.forEach((place, i) =>
      assert.deepEqual(
        new Uint8Array(file.subarray(place.offset, place.offset + place.length)),
        tensors[i],
      ),
    );
  });

  it('refuses other bytes, names or lengths, another order, or fewer tensors', () => {
    const written = writeFirst();
    const changed = new Uint8Array(5000).fill(7);
    changed[4999] = 8;
    assert.throws(() => new ReplayDataSink('a.data', written).write(changed, names[0]), /tensor 0/);
    assert.throws(
      () => new ReplayDataSink('a.data', written).write(tensors[1], names[1]),
      /tensor 0 \(c UINT8 \[100\], 100 bytes\) is not .* \(w UINT8 \[5000\], 5000 bytes\)/,
    );
    assert.throws(
      () => new ReplayDataSink('a.data', written).place('v UINT8 [5000]', 5000),
      /tensor 0/,
    );
    assert.throws(() => new ReplayDataSink('a.data', written).place(names[0], 4000), /tensor 0/);
    const partial = new ReplayDataSink('a.data', written);
    partial.place(names[0], 5000);
    assert.throws(() => partial.assertComplete(), /1 of the 2 tensors/);
  });

  it("places a second graph's weights without computing them, and still checks generated tensors", () => {
    const written: WrittenPlace[] = [];
    const weight = new Uint8Array(4096).fill(5);
    const table = (value: number) => () => new Uint8Array(2048).fill(value);
    const build = (g: GraphBuilder, weightBytes: () => Uint8Array, tableValue: number) => {
      g.initializer('w', DataType.UINT8, [64, 64], weightBytes);
      g.initializer('table', DataType.UINT8, [2048], table(tableValue), { generated: true });
    };
    const first = new FileDataSink(join(dir, 'b.data'), 'b.data', written);
    build(new GraphBuilder('first', first), () => weight, 1);
    first.close();
    assert.deepEqual(
      written.map((place) => place.tensor),
      ['w UINT8 [64,64]', 'table UINT8 [2048]'],
    );
    const unread = () => {
      throw new Error('a placed weight was computed');
    };
    const replay = new ReplayDataSink('b.data', written);
    build(new GraphBuilder('second', replay), unread, 1);
    replay.assertComplete();
    assert.throws(
      () => build(new GraphBuilder('third', new ReplayDataSink('b.data', written)), unread, 2),
      /tensor 1 \(table/,
    );
  });
});
