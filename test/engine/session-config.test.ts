/**
 * The engine's sessions count denormal floats as zero on the CPU (session-config.ts). onnxruntime
 * applies that to the thread that creates a process's first session, which in Node is also the
 * thread every session runs on, so it is checked in a fresh process: once the engine has loaded a
 * model, even a session created without the option flushes a product below 1e-38 to zero.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { TINY_MODEL_DIR } from './golden-fixture';

const ROOT = resolve(__dirname, '..', '..');

/** Squares 1e-20 in float32 (1e-40, a denormal) after optionally loading the tiny model. */
const SCRIPT = `
const ort = require('onnxruntime-node');
const { loadModel } = require('./server/engine/runtime/load-model');
const { DataType, GraphBuilder } = require('./server/engine/onnx/graph-builder');
(async () => {
  const [modelDir, cacheDir] = process.argv.slice(1);
  const model = modelDir ? await loadModel(modelDir, { cacheDir, device: 'cpu' }) : undefined;
  const g = new GraphBuilder('square');
  const x = g.input('x', DataType.FLOAT, [1]);
  g.node('Mul', [x, x], { outputs: ['y'] });
  g.output('y', DataType.FLOAT, [1]);
  const session = await ort.InferenceSession.create(g.encode([{ domain: '', version: 21 }]));
  const { y } = await session.run({ x: new ort.Tensor('float32', Float32Array.from([1e-20]), [1]) });
  console.log(JSON.stringify({ square: y.data[0] }));
  await session.release();
  await model?.dispose();
})();`;

function square(args: string[]): Promise<number> {
  return new Promise((done, fail) => {
    execFile(
      process.execPath,
      ['--require', 'tsx/cjs', '-e', SCRIPT, ...args],
      { cwd: ROOT, timeout: 120_000 },
      (error, stdout, stderr) => {
        if (error) return fail(new Error(`${error.message}\n${stderr}`));
        done(JSON.parse(stdout.trim().split('\n').at(-1)!).square);
      },
    );
  });
}

describe('session config: denormals count as zero on the CPU', function () {
  this.timeout(180_000);
  let cacheDir: string;
  before(() => (cacheDir = mkdtempSync(join(tmpdir(), 'd2c-denormals-'))));
  after(() => rmSync(cacheDir, { recursive: true, force: true }));

  it('a process without the engine keeps the denormal (the check can tell)', async () => {
    const value = await square([]);
    assert.ok(value > 0 && value < 1.2e-38, String(value));
  });

  it('once the engine has loaded a model, the thread that runs sessions flushes it', async () => {
    assert.equal(await square([TINY_MODEL_DIR, cacheDir]), 0);
  });
});
