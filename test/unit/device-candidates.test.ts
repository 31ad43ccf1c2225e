import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { candidateDevices, mayHaveGpu } from '../../server/engine/runtime/providers';

describe('which devices auto tries', () => {
  let dev: string;
  beforeEach(() => (dev = mkdtempSync(join(tmpdir(), 'd2c-dev-'))));
  afterEach(() => rmSync(dev, { recursive: true, force: true }));

  if (process.platform === 'linux') {
    it('sees no GPU without a render node, an NVIDIA device or WSL GPU', () => {
      mkdirSync(join(dev, 'dri'));
      writeFileSync(join(dev, 'dri', 'card0'), '');
      assert.equal(mayHaveGpu(dev), false);
    });

    for (const node of ['dri/renderD128', 'nvidia0', 'dxg']) {
      it(`sees a GPU behind /dev/${node}`, () => {
        mkdirSync(join(dev, 'dri'));
        writeFileSync(join(dev, node), '');
        assert.equal(mayHaveGpu(dev), true);
      });
    }
  }

  it('tries an explicit device as asked, and always ends auto with the CPU', () => {
    assert.deepEqual(candidateDevices('webgpu'), ['webgpu']);
    assert.equal(candidateDevices('auto').at(-1), 'cpu');
    assert.equal(candidateDevices('auto').includes('webgpu'), mayHaveGpu());
  });
});
