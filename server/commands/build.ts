/**
 * `design-to-code build`: builds the ONNX model of a checkpoint into the cache (or finds it
 * there), exactly as the first load would, so that it can be done ahead of time. `serve` runs
 * it as a child process: the build is synchronous for minutes, and in a child it neither
 * blocks the server's event loop nor outlives a stop (the child is killed at once).
 */
import {
  UsageError,
  graphCaptureHelp,
  parseDevice,
  parseGraphCapture,
  parsePrecision,
} from './options';
import { writeSync } from 'node:fs';
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import type { BuildProgress, DeviceRequest, Precision } from '../engine/contracts';
import { isEngineError } from '../engine/errors';
import { exitWithParent } from './exit-with-parent';
import { DEFAULT_PRECISION, ensureModelBuild } from '../engine/runtime/model-build';
import { resolveDevice } from '../engine/runtime/providers';

const USAGE = `Usage: design-to-code build --model DIR [options]

Builds the ONNX model of a Qwen3-VL checkpoint into the cache ($DESIGN_TO_CODE_CACHE or
~/.cache/design-to-code/onnx), as the first "serve" or "generate" would; a finished build is reused.

Options:
  --model DIR         Hugging Face Qwen3-VL checkpoint directory (required)
  --precision P       fp32, fp16 or int4 (default ${DEFAULT_PRECISION})
  --graph-capture N   ${graphCaptureHelp(22)}
  --device D          the device it will run on: auto, cpu, webgpu, cuda, dml or coreml
                      (default cpu); any device but cpu gets the GPU build, and auto
                      the build of the device that loads here
  --json              JSON lines on stdout: {"event":"progress","stage":"build",...}, then
                      {"event":"built","dir":...,"built":true|false}
                      or {"event":"error","code":...,"message":...}
  --parent PID        stop at once when process PID ends (serve passes its own pid)
  -h, --help          show this help`;

interface BuildArgs {
  modelDir: string;
  device: DeviceRequest;
  precision?: Precision;
  graphCapture?: { capacity: number };
  json: boolean;
  parent?: number;
}

export async function runBuild(argv: string[]): Promise<number> {
  let args: BuildArgs | undefined;
  try {
    args = parseBuildArgs(argv);
  } catch (error) {
    process.stderr.write(`design-to-code build: ${(error as Error).message}\n\n${USAGE}\n`);
    return 2;
  }
  if (!args) {
    process.stdout.write(USAGE + '\n');
    return 0;
  }
  const { json } = args;
  if (args.parent !== undefined) exitWithParent(args.parent);
  try {
    const { device } = await resolveDevice(args.device);
    const { build } = ensureModelBuild(args.modelDir, {
      device,
      precision: args.precision,
      graphCapture: args.graphCapture,
      onProgress: json
        ? (progress) => writeLine({ event: 'progress', ...progress })
        : printProgress(),
    });
    if (json) writeLine({ event: 'built', dir: build.dir, built: build.built });
    else process.stdout.write(`${build.built ? 'built' : 'already built'}: ${build.dir}\n`);
    return 0;
  } catch (error) {
    const code = isEngineError(error) ? error.code : 'internal';
    const message = error instanceof Error ? error.message : String(error);
    // A closed stdout means the parent (serve) is gone: nobody is left to tell.
    if (json && !isBrokenPipe(error)) writeLine({ event: 'error', code, message });
    process.stderr.write(`design-to-code build: ${message} [${code}]\n`);
    return 1;
  }
}

function parseBuildArgs(argv: string[]): BuildArgs | undefined {
  let values;
  try {
    ({ values } = parseArgs({
      args: argv,
      strict: true,
      options: {
        model: { type: 'string' },
        device: { type: 'string', default: 'cpu' },
        precision: { type: 'string' },
        'graph-capture': { type: 'string' },
        json: { type: 'boolean', default: false },
        parent: { type: 'string' },
        help: { type: 'boolean', short: 'h', default: false },
      },
    }));
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
  if (values.help) return undefined;
  if (!values.model) throw new UsageError('--model DIR is required');
  const parent = values.parent === undefined ? undefined : Number(values.parent);
  if (parent !== undefined && !(Number.isInteger(parent) && parent > 0)) {
    throw new UsageError(`--parent must be a process id, not "${values.parent}"`);
  }
  const device = parseDevice(values.device);
  const precision = parsePrecision(values.precision);
  const graphCapture = parseGraphCapture(values['graph-capture']);
  return {
    modelDir: resolve(values.model),
    device,
    precision,
    graphCapture,
    json: values.json,
    parent,
  };
}

/**
 * The build holds the event loop, so progress is written synchronously: a stream would only
 * flush once the build is over. When the reader is gone (EPIPE: serve died) the write throws,
 * which aborts the build, and the build cache removes its partial output.
 */
function writeLine(event: Record<string, unknown>): void {
  const bytes = Buffer.from(JSON.stringify(event) + '\n');
  let offset = 0;
  while (offset < bytes.length) {
    try {
      offset += writeSync(1, bytes, offset);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EAGAIN') throw error;
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 10);
    }
  }
}

function isBrokenPipe(error: unknown): boolean {
  return (error as NodeJS.ErrnoException)?.code === 'EPIPE';
}

/** Human-readable progress on stderr, at most one line per graph and tenth of its tensors. */
function printProgress(): (progress: BuildProgress) => void {
  let last = '';
  return ({ item, done, total }) => {
    const step = `${item} ${Math.floor((done / Math.max(total, 1)) * 10) * 10}%`;
    if (step === last) return;
    last = step;
    writeSync(2, `building ${step} (${done}/${total} tensors)\n`);
  };
}
