/**
 * What a run of R tokens costs onnxruntime's int4 matrix multiplies, per storage format:
 *   tsx scripts/bench/int4-kernel-rows.ts [--device webgpu|cpu] [--runtime node|web]
 *     [--formats 32:sym:4,64:sym:4,128:sym:4,32:sym:0] [--rows 1,2,3,4,8,17,33,64,256,1024]
 *     [--rounds 3] [--config config.json] [--cache DIR]
 *
 * The graph is a decode step's int4 matrices (int4-kernel-ceiling.ts: q/k/v, o, gate/up, down
 * per layer and the LM head, random weights) over R rows: R = 1 is a decode step, 2-33 a
 * speculative verification run or a refinement's new message, 256-1024 a prompt chunk.
 * onnxruntime picks its kernel by the row count and the format: on an H200, onnxruntime-node
 * 1.30's WebGPU provider ran the engine's GPU format (blocks of 32, no zero points, level 4)
 * through its subgroup-matrix kernel from 4 rows, ~140 us a call whether 4 or 64 rows, so any
 * run of 4+ tokens cost 3-4 decode steps (docs/bench/2026-11-27-h200). Its source takes that
 * kernel only for blocks of 32, and onnxruntime-web's WebAssembly build (graph capture) never
 * does; other blocks take its DP4A kernel (level 4) or the generic one. This prints, per format
 * and row count, the median ms of a pass, the ratio to the same format's one-row pass (a run's
 * cost in steps, as the draft planner's curve counts it) and the speed against the first
 * format at the same rows. The formats' passes alternate round by round in one process.
 * --runtime web times onnxruntime-web's WebGPU build on Dawn's Node binding instead
 * (ort-web-in-node.ts). --config: a checkpoint's config.json (default: the 2B layout). The GPU
 * script's `kernels` job runs both runtimes (scripts/gpu/run.sh).
 */
import { readFileSync } from 'node:fs';
import { basename, resolve } from 'node:path';
import * as ortNode from 'onnxruntime-node';
import { loadOrtWeb } from '../../server/engine/runtime/ort-web-in-node';
import { SESSION_CONFIG } from '../../server/engine/runtime/session-config';
import {
  type KernelFormat,
  type KernelDevice,
  decodeShapes,
  ensureGraph,
  kernelInput,
  kernelTextConfig,
  onDeviceButLast,
  parseKernelFormat,
  passBytes,
} from './int4-kernel-ceiling';

type Runtime = 'node' | 'web';

/** The calls a pass needs of either runtime's session and tensors. */
interface Pass {
  run(rows: number): Promise<void>;
  release(): Promise<void>;
}

function parseArgs(argv: string[]) {
  const options: Record<string, string> = {
    device: 'webgpu',
    runtime: 'node',
    rows: '1,2,3,4,8,17,33,64,256,1024',
    formats: '',
    rounds: '3',
    config: '',
    cache: '.cache/bench-engine/int4-kernel',
  };
  for (let i = 0; i < argv.length; i += 2) {
    const [flag, value] = [argv[i], argv[i + 1]];
    const key = flag?.replace(/^--/, '');
    if (value === undefined || !(key in options)) {
      throw new Error(`unknown option or missing value: ${flag}`);
    }
    options[key] = value;
  }
  const device = options.device as KernelDevice;
  const runtime = options.runtime as Runtime;
  if (!['webgpu', 'cpu'].includes(device)) throw new Error('--device is webgpu or cpu');
  if (!['node', 'web'].includes(runtime)) throw new Error('--runtime is node or web');
  if (runtime === 'web' && device !== 'webgpu') throw new Error('--runtime web runs on webgpu');
  // The engine's int4 formats: GPU builds are symmetric (onnxruntime's WebGPU fusions need it).
  const formats =
    options.formats || (device === 'webgpu' ? '32:sym:4,64:sym:4,128:sym:4,32:sym:0' : '32:zp:4');
  const rows = options.rows.split(',').map(Number);
  if (!rows.every((r) => Number.isInteger(r) && r > 0)) throw new Error('--rows: whole numbers');
  return {
    device,
    runtime,
    formats: formats.split(',').map(parseKernelFormat),
    rows,
    rounds: Number(options.rounds),
    configPath: options.config,
    cache: resolve(options.cache),
  };
}

async function openPass(
  path: string,
  shapes: [number, number][],
  device: KernelDevice,
  runtime: Runtime,
): Promise<Pass> {
  const ort = runtime === 'web' ? loadOrtWeb() : ortNode;
  const dataPath = path.replace(/\.onnx$/, '.data');
  const options = {
    graphOptimizationLevel: 'all' as const,
    ...(device === 'webgpu'
      ? { executionProviders: ['webgpu'], preferredOutputLocation: onDeviceButLast(shapes) }
      : { extra: SESSION_CONFIG }),
  };
  const session =
    runtime === 'web'
      ? await loadOrtWeb().InferenceSession.create(readFileSync(path), {
          ...options,
          logSeverityLevel: 3,
          externalData: [{ path: basename(dataPath), data: readFileSync(dataPath) }],
        })
      : await ortNode.InferenceSession.create(path, options);
  const feeds = new Map<number, Record<string, unknown>>();
  return {
    async run(rows) {
      if (!feeds.has(rows)) {
        const byName: Record<string, unknown> = {};
        for (const name of session.inputNames) {
          const { type, data, dims } = kernelInput(name, rows, device);
          byName[name] = new ort.Tensor(type, data, dims);
        }
        feeds.set(rows, byName);
      }
      // The run ends when the LM head's product is on the host; GPU outputs go at once.
      const outputs = await session.run(feeds.get(rows) as never);
      for (const tensor of Object.values(outputs)) (tensor as { dispose(): void }).dispose();
    },
    release: () => session.release(),
  };
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

async function main(): Promise<void> {
  const { device, runtime, formats, rows, rounds, configPath, cache } = parseArgs(
    process.argv.slice(2),
  );
  const text = kernelTextConfig(configPath);
  const shapes = decodeShapes(text);
  const passes: { format: KernelFormat; pass: Pass; times: Map<number, number[]> }[] = [];
  for (const format of formats) {
    const path = ensureGraph(text, cache, device, format, { anyRows: true });
    const pass = await openPass(path, shapes, device, runtime);
    // Every row count once first: WebGPU compiles a shader per kernel and shape.
    for (const r of rows) await pass.run(r);
    passes.push({ format, pass, times: new Map(rows.map((r) => [r, []])) });
  }
  for (let round = 0; round < rounds; round++) {
    for (const { pass, times } of passes) {
      for (const r of rows) {
        for (let i = 0; i < 3; i++) {
          const started = performance.now();
          await pass.run(r);
          times.get(r)!.push(performance.now() - started);
        }
      }
    }
  }
  const firstFormat = passes[0].times;
  for (const { format, pass, times } of passes) {
    await pass.release();
    const oneRow = median(times.get(rows[0])!);
    for (const r of rows) {
      const ms = median(times.get(r)!);
      console.log(
        JSON.stringify({
          bench: 'int4_kernel_rows',
          device,
          runtime,
          block_size: format.blockSize,
          zero_points: format.zeroPoints,
          accuracy_level: format.accuracyLevel,
          rows: r,
          matrices: shapes.length,
          median_ms: +ms.toFixed(2),
          best_ms: +Math.min(...times.get(r)!).toFixed(2),
          [`vs_${rows[0]}_rows`]: +(ms / oneRow).toFixed(2),
          speed_vs_first_format: +(median(firstFormat.get(r)!) / ms).toFixed(3),
          mb_per_pass: Math.round(passBytes(text, device, format) / 1e6),
        }),
      );
    }
  }
}

main().catch((error) => {
  console.error(error instanceof Error ? error.message : error);
  process.exit(1);
});
