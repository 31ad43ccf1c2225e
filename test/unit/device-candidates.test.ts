import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isEngineError } from '../../server/engine/errors';
import {
  candidateDevices,
  mayHaveGpu,
  probeDevice,
  providerLoadError,
  resolveDevice,
} from '../../server/engine/runtime/providers';

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

  it('resolves an explicit device as asked, without probing it', async () => {
    assert.deepEqual(await resolveDevice('dml'), { device: 'dml', skipped: [] });
  });

  it('resolves auto to the first candidate that loads, saying why each before it did not', async () => {
    const { device, skipped } = await resolveDevice('auto');
    const candidates = candidateDevices('auto');
    assert.equal(candidates.indexOf(device), skipped.length);
    skipped.forEach((reason, i) => assert.ok(reason.startsWith(`${candidates[i]}: `), reason));
  });

  it('probes a provider that cannot load into device_unavailable', async function () {
    if (process.platform !== 'linux') this.skip();
    await probeDevice('cpu');
    await assert.rejects(
      probeDevice('dml'),
      (e) => isEngineError(e, 'device_unavailable') && /not available on linux/.test(String(e)),
    );
  });

  it('says fp32 runs where a GPU has no 16-bit floats, and keeps the plain advice otherwise', () => {
    // onnxruntime's WebGPU provider, on an H200 through Dawn's Node binding without f16.
    const noF16 = providerLoadError(
      'webgpu',
      new Error(
        "Non-zero status code returned while running Add node. Name:'n0_Add' Status Message: shader_helper.cc:416 GenerateSourceCode Program Add requires f16 but the device does not support it.",
      ),
    );
    assert.equal(noF16.code, 'device_unavailable');
    assert.match(noF16.message, /no 16-bit floats \(shader-f16\)/);
    assert.match(noF16.message, /precision to fp32/);
    const other = providerLoadError('webgpu', new Error('Failed to get a WebGPU adapter'));
    assert.doesNotMatch(other.message, /fp32/);
    assert.match(other.message, /Use --device cpu or auto\.$/);
  });
});
