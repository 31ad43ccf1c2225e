/**
 * External weight files: a second graph with a first graph's weights (a graph-capture build's
 * step and prompt form) points at the first's .data file, each tensor checked against the one
 * written at its turn, so a graph whose weights differ fails its build.
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

describe('external data shared by two graphs', () => {
  let dir: string;
  before(() => (dir = mkdtempSync(join(tmpdir(), 'd2c-data-'))));
  after(() => rmSync(dir, { recursive: true, force: true }));

  const tensors = [new Uint8Array(5000).fill(7), new Uint8Array(100).fill(3)];
  function writeFirst(): WrittenPlace[] {
    const written: WrittenPlace[] = [];
    const sink = new FileDataSink(join(dir, 'a.data'), 'a.data', written);
    for (const t of tensors) sink.write(t);
    sink.close();
    return written;
  }

  it('gives the second graph the places the first graph wrote, and writes nothing', () => {
    const written = writeFirst();
    const replay = new ReplayDataSink('a.data', written);
    const places = tensors.map((t) => replay.write(t));
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

  it('refuses other bytes, another order, or fewer tensors', () => {
    const written = writeFirst();
    const changed = new Uint8Array(5000).fill(7);
    changed[4999] = 8;
    assert.throws(() => new ReplayDataSink('a.data', written).write(changed), /tensor 0/);
    assert.throws(() => new ReplayDataSink('a.data', written).write(tensors[1]), /tensor 0/);
    const partial = new ReplayDataSink('a.data', written);
    partial.write(tensors[0]);
    assert.throws(() => partial.assertComplete(), /1 of the 2 tensors/);
  });
});
