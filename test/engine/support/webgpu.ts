/**
 * Whether the WebGPU tests can run here. `npm test` installs Mesa's software Vulkan driver
 * (scripts/setup-vulkan.sh) and sets DESIGN_TO_CODE_TEST_WEBGPU=required, so there a missing
 * adapter fails the suite; elsewhere (a plain `npx mocha` on a machine without Vulkan) the
 * WebGPU suites are skipped and say why.
 */
import * as ort from 'onnxruntime-node';
import { writeFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DataType, GraphBuilder } from '../../../server/engine/onnx/graph-builder';
import { DryRunSink } from '../../../server/engine/onnx/external-data';

let probe: Promise<string | undefined> | undefined;

/** undefined when a WebGPU session loads and runs; otherwise the reason it does not. */
export function webgpuUnavailable(): Promise<string | undefined> {
  return (probe ??= (async () => {
    const dir = mkdtempSync(join(tmpdir(), 'd2c-webgpu-probe-'));
    try {
      const g = new GraphBuilder('probe', new DryRunSink());
      const x = g.input('x', DataType.FLOAT, [2]);
      g.node('Neg', [x], { outputs: ['y'] });
      g.output('y', DataType.FLOAT, [2]);
      const path = join(dir, 'probe.onnx');
      writeFileSync(path, g.encode([{ domain: '', version: 21 }]));
      const session = await ort.InferenceSession.create(path, { executionProviders: ['webgpu'] });
      const { y } = await session.run({ x: new ort.Tensor('float32', Float32Array.of(1, 2), [2]) });
      await session.release();
      return y.data[1] === -2 ? undefined : `WebGPU computed ${y.data[1]} for -2`;
    } catch (error) {
      return (error instanceof Error ? error.message : String(error)).split('\n')[0];
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  })());
}

/**
 * Whether the WebGPU tests run: true with an adapter; without one, false after saying why, or
 * a throw where WebGPU is required.
 */
export async function webgpuTestable(): Promise<boolean> {
  const reason = await webgpuUnavailable();
  if (reason === undefined) return true;
  if (process.env.DESIGN_TO_CODE_TEST_WEBGPU === 'required') {
    throw new Error(`WebGPU is required here but did not load: ${reason}`);
  }
  console.log(
    `      (WebGPU skipped: ${reason}; scripts/setup-vulkan.sh installs a software driver)`,
  );
  return false;
}

/** In a suite's before(): skips it (or fails, where WebGPU is required) without an adapter. */
export async function requireWebGpu(context: Mocha.Context): Promise<void> {
  if (!(await webgpuTestable())) context.skip();
}
