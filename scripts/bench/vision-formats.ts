/**
 * The vision tower in each weight format, timed in one process on one device:
 *   tsx scripts/bench/vision-formats.ts --model DIR [--device cpu|webgpu] [--image WxH]
 *     [--formats float,int8] [--stages 1,8] [--runs N] [--profile DIR]
 *
 * Builds only the vision graph of the checkpoint in each format under a temporary directory
 * (fp16 activations on WebGPU, fp32 on the CPU, as the builds do), then runs a screenshot-sized
 * grid of random patches through each and prints one JSON line per format: the median time of
 * --runs runs after a warm-up, and the cosine of its image embeddings to the first format's
 * (the reference: float). Defaults: on the CPU float (fp32) against int8 (what CPU int4 builds
 * run), on WebGPU float (fp16, what GPU builds run) against int8-blocks (MatMulNBits 8-bit, a
 * candidate for GPU builds) and int4 (the speed of the 4-bit kernels, and what it costs in
 * agreement). --stages builds each format in that many stages, for each number listed (1: one
 * run; vision-graph.ts), and prints also the slowest stage's run (how long a Stop waits at most)
 * and the process's resident memory after the runs (what the session keeps between images;
 * earlier formats and stage counts in the same process count too, so compare it run alone).
 * --profile writes an onnxruntime profile per format (on WebGPU each kernel's GPU time;
 * scripts/gpu/summarize_profile.py PROFILE.json 1 sums it).
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join, resolve } from 'node:path';
import * as ort from 'onnxruntime-node';
import { readModelConfig } from '../../server/engine/checkpoint/config';
import { SafetensorsCheckpoint } from '../../server/engine/checkpoint/safetensors';
import { WeightTracker, checkpointSource } from '../../server/engine/checkpoint/weights';
import { OPSETS } from '../../server/engine/onnx/build-graphs';
import { FileDataSink } from '../../server/engine/onnx/external-data';
import { readImageProcessorConfig } from '../../server/engine/preprocess/image-config';
import { smartResize } from '../../server/engine/preprocess/smart-resize';
import { DataType, GraphBuilder } from '../../server/engine/onnx/graph-builder';
import type { WeightFormat } from '../../server/engine/onnx/layers';
import {
  buildVisionGraph,
  framePatchValues,
  visionStages,
} from '../../server/engine/onnx/vision-graph';
import { SESSION_CONFIG } from '../../server/engine/runtime/session-config';
import { OnnxVisionEncoder } from '../../server/engine/runtime/vision-encoder';

interface Options {
  model: string;
  device: 'cpu' | 'webgpu';
  image: [number, number];
  formats?: WeightFormat[];
  stages: number[];
  runs: number;
  profile?: string;
}

function parseArgs(argv: string[]): Options {
  const options: Partial<Options> = {
    device: 'cpu',
    image: [1280, 800],
    runs: 3,
    stages: [1],
  };
  for (let i = 0; i < argv.length; i += 2) {
    const [flag, value] = [argv[i], argv[i + 1]];
    if (value === undefined) throw new Error(`${flag} needs a value`);
    if (flag === '--model') options.model = resolve(value);
    else if (flag === '--device') options.device = value as Options['device'];
    else if (flag === '--formats') options.formats = value.split(',') as WeightFormat[];
    else if (flag === '--stages') options.stages = value.split(',').map(Number);
    else if (flag === '--runs') options.runs = Number(value);
    else if (flag === '--profile') options.profile = resolve(value);
    else if (flag === '--image') {
      const m = /^(\d+)x(\d+)$/.exec(value);
      if (!m) throw new Error('--image takes WIDTHxHEIGHT, e.g. 1280x800');
      options.image = [Number(m[1]), Number(m[2])];
    } else throw new Error(`unknown argument ${flag}`);
  }
  if (!options.model) throw new Error('--model DIR is required');
  if (options.device !== 'cpu' && options.device !== 'webgpu') {
    throw new Error('--device takes cpu or webgpu');
  }
  return options as Options;
}

function cosine(a: Float32Array, b: Float32Array): number {
  let [dot, na, nb] = [0, 0, 0];
  for (let i = 0; i < a.length; i++) {
    dot += a[i] * b[i];
    na += a[i] * a[i];
    nb += b[i] * b[i];
  }
  return dot / Math.sqrt(na * nb);
}

async function main(): Promise<void> {
  const options = parseArgs(process.argv.slice(2));
  const config = readModelConfig(options.model);
  const v = config.vision;
  const source = checkpointSource(SafetensorsCheckpoint.open(options.model));
  const dtype = options.device === 'webgpu' ? DataType.FLOAT16 : DataType.FLOAT;
  const formats =
    options.formats ??
    (options.device === 'webgpu' ? ['float', 'int8-blocks', 'int4'] : (['float', 'int8'] as const));
  // The grid a screenshot of that size gets: the checkpoint's smart_resize, as preprocessing
  // does (without the engine's pixel cap, as bench:engine measures).
  const processor = readImageProcessorConfig(options.model);
  const [width, height] = options.image;
  const factor = processor.patchSize * processor.mergeSize;
  const resized = smartResize(height, width, factor, processor.minPixels, processor.maxPixels);
  const grid: [number, number, number] = [
    1,
    resized.height / processor.patchSize,
    resized.width / processor.patchSize,
  ];
  const patches = grid[1] * grid[2];
  const patchIn = framePatchValues(v);
  let seed = 1;
  const pixels = Float32Array.from({ length: patches * patchIn }, () => {
    seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0;
    return (seed / 2 ** 32) * 2 - 1;
  });

  const dir = mkdtempSync(join(tmpdir(), 'd2c-vision-formats-'));
  let reference: Float32Array | undefined;
  try {
    for (const format of formats) {
      for (const count of options.stages) {
        const built = Date.now();
        const file = join(dir, `${format}-${count}.onnx`);
        const sink = new FileDataSink(`${file}.data`, `${basename(file)}.data`);
        const g = new GraphBuilder(`vision_${format}`, sink);
        const weights = new WeightTracker(source);
        // int4 as GPU builds write it (no zero points).
        const int4Symmetric = options.device === 'webgpu';
        buildVisionGraph({ g, weights, dtype, linearFormat: format, int4Symmetric }, config, count);
        sink.close();
        writeFileSync(file, g.encode(OPSETS));
        const buildS = (Date.now() - built) / 1000;
        const session = await ort.InferenceSession.create(file, {
          executionProviders: [options.device],
          graphOptimizationLevel: 'all',
          logSeverityLevel: 3,
          extra: SESSION_CONFIG,
          ...(options.profile
            ? {
                enableProfiling: true,
                profileFilePrefix: join(options.profile, `vision-${format}-${count}`),
              }
            : {}),
        });
        // Each stage's time, from a wrapper around its run.
        const stageMs: number[] = [];
        const encoder = new OnnxVisionEncoder(timedSession(session, stageMs), config);
        let embeds = (await encoder.encode(pixels, grid)).imageEmbeds; // warm-up
        const times: number[] = [];
        stageMs.length = 0;
        for (let i = 0; i < options.runs; i++) {
          const started = performance.now();
          embeds = (await encoder.encode(pixels, grid)).imageEmbeds;
          times.push(performance.now() - started);
        }
        const rssMb = Math.round(process.memoryUsage().rss / 1e6);
        const anonMb = anonymousRssMb();
        await session.release();
        reference ??= embeds;
        times.sort((a, b) => a - b);
        console.log(
          JSON.stringify({
            bench: 'vision_formats',
            device: options.device,
            format,
            activations: dtype === DataType.FLOAT16 ? 'fp16' : 'fp32',
            image: `${width}x${height}`,
            patches,
            stages: visionStages(v.depth, count).length,
            vision_ms: round1(times[Math.floor(times.length / 2)]),
            best_ms: round1(times[0]),
            slowest_stage_ms: round1(Math.max(...stageMs)),
            rss_mb: rssMb,
            rss_anon_mb: anonMb,
            weights_mb: Math.round(sink.bytesWritten / 1e6),
            build_s: buildS,
            cosine_to_first: Number(cosine(embeds, reference).toFixed(6)),
          }),
        );
        rmSync(`${file}.data`, { force: true });
      }
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const round1 = (x: number) => Math.round(x * 10) / 10;

/**
 * The resident memory that is not file pages (Linux; null elsewhere): onnxruntime maps external
 * weights from their file, and those pages the system can drop and read again.
 */
function anonymousRssMb(): number | null {
  try {
    const match = /RssAnon:\s+(\d+) kB/.exec(readFileSync('/proc/self/status', 'utf8'));
    return match ? Math.round(Number(match[1]) / 1e3) : null;
  } catch {
    return null;
  }
}

/** `session` with each run's time pushed to `times`. */
function timedSession(session: ort.InferenceSession, times: number[]): ort.InferenceSession {
  return new Proxy(session, {
    get(target, property, receiver) {
      if (property !== 'run') return Reflect.get(target, property, receiver);
      return async (...args: Parameters<ort.InferenceSession['run']>) => {
        const started = performance.now();
        const result = await target.run(...args);
        times.push(performance.now() - started);
        return result;
      };
    },
  });
}

main().catch((error) => {
  console.error(error instanceof Error ? error.message : error);
  process.exit(1);
});
