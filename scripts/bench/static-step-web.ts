/**
 * Greedy decoding with the static decode step (decoder-graph.ts `staticStep`) on onnxruntime-web
 * (ort-web-in-node.ts), optionally with WebGPU graph capture: every input and output lives in a
 * GPU buffer of its own that the host writes or reads, past and present are one buffer per layer
 * and K/V (GroupQueryAttention appends in place), so every run has the same bindings and a
 * captured run can be replayed. A prompt runs token by token (the step takes one token).
 */
import { readFileSync } from 'node:fs';
import { basename } from 'node:path';
import type { Qwen3VLConfig } from '../../server/engine/checkpoint/config';
import {
  DECODER_INPUTS,
  DECODER_OUTPUTS,
  LOGIT_BLOCK,
  keptLogitBlocks,
} from '../../server/engine/onnx/decoder-graph';
import { topLogitsFromBlocks } from '../../server/engine/runtime/best-logits';
import { MropeTables } from '../../server/engine/runtime/mrope';
import { GpuTensors, type GpuBuffer, keepRegistered, loadOrtWeb } from './ort-web-in-node';

/** A generation's tokens (the prompt's next token first) and timings. */
export interface Decoded {
  tokens: number[];
  promptMs: number;
  stepMs: number[];
}

export interface StaticStepRun {
  /** The step graph (its weights beside it in PATH.data). */
  path: string;
  config: Qwen3VLConfig;
  /** The rows of its cache. */
  capacity: number;
  /** Its cache's element type: float16 for fp16 and int4 builds. */
  cacheType: 'float16' | 'float32';
  capture: boolean;
  /**
   * Each step takes the previous step's next_token on the GPU (a buffer copy) and is queued
   * before that token reaches the host, which reads tokens one step behind: the host's wait
   * leaves the critical path. Otherwise each step waits for its best logits (as the engine).
   */
  pipelined?: boolean;
  /** Text tokens (positions 0, 1, ...). */
  prompt: number[];
  steps: number;
}

export async function decodeStaticStep(run: StaticStepRun): Promise<Decoded> {
  const t = run.config.text;
  const ort = loadOrtWeb();
  const session = await ort.InferenceSession.create(readFileSync(run.path), {
    executionProviders: ['webgpu'],
    graphOptimizationLevel: 'all',
    enableGraphCapture: run.capture,
    preferredOutputLocation: 'gpu-buffer',
    externalData: [{ path: `${basename(run.path)}.data`, data: readFileSync(`${run.path}.data`) }],
  });
  const gpu = await GpuTensors.of(ort);
  try {
    const kept = keptLogitBlocks(t.vocabSize);
    const input = {
      ids: gpu.create('int64', [1, 1]),
      cos: gpu.create('float32', [run.capacity, t.headDim / 2]),
      sin: gpu.create('float32', [run.capacity, t.headDim / 2]),
      seqlens: gpu.create('int32', [1]),
      total: gpu.create('int32', []),
    };
    const output = {
      logits: gpu.create('float32', [1, t.vocabSize]),
      blocks: gpu.create('int64', [1, kept, 1]),
      blockLogits: gpu.create('float32', [1, kept, LOGIT_BLOCK]),
      nextToken: gpu.create('int64', [1, 1]),
    };
    const feeds: Record<string, (typeof input)['ids']['tensor']> = {
      [DECODER_INPUTS.ids]: input.ids.tensor,
      [DECODER_INPUTS.cos]: input.cos.tensor,
      [DECODER_INPUTS.sin]: input.sin.tensor,
      [DECODER_INPUTS.seqlens]: input.seqlens.tensor,
      [DECODER_INPUTS.total]: input.total.tensor,
    };
    const fetches: typeof feeds = {
      [DECODER_OUTPUTS.logits]: output.logits.tensor,
      [DECODER_OUTPUTS.bestBlocks]: output.blocks.tensor,
      [DECODER_OUTPUTS.bestBlockLogits]: output.blockLogits.tensor,
      [DECODER_OUTPUTS.nextToken]: output.nextToken.tensor,
    };
    const buffers: GpuBuffer[] = [...Object.values(input), ...Object.values(output)].map(
      (io) => io.buffer,
    );
    const cacheDims = [1, t.numKvHeads, run.capacity, t.headDim];
    for (let l = 0; l < t.numLayers; l++) {
      for (const [past, present] of [
        [DECODER_INPUTS.pastKey(l), DECODER_OUTPUTS.presentKey(l)],
        [DECODER_INPUTS.pastValue(l), DECODER_OUTPUTS.presentValue(l)],
      ]) {
        const cache = gpu.create(run.cacheType, cacheDims);
        feeds[past] = fetches[present] = cache.tensor;
        buffers.push(cache.buffer);
      }
    }
    if (run.capture) await keepRegistered(ort, buffers);
    const positions = run.prompt.map((_, i) => i);
    const table = new MropeTables(t).cacheTable(
      [positions, positions, positions],
      run.prompt.length,
      run.capacity,
    );
    gpu.write(input.cos.buffer, table.cos);
    gpu.write(input.sin.buffer, table.sin);

    /**
     * Runs the token at cache position `position` (-1: the one the last run chose, still on the
     * GPU); reads the best next token back if asked.
     */
    const step = async (token: number, position: number, read: boolean) => {
      if (token < 0) gpu.copy(output.nextToken.buffer, input.ids.buffer, 8);
      else gpu.write(input.ids.buffer, BigInt64Array.of(BigInt(token)));
      gpu.write(input.seqlens.buffer, Int32Array.of(position));
      gpu.write(input.total.buffer, Int32Array.of(position + 1));
      await session.run(feeds, fetches);
      if (!read) return -1;
      const [blockIds, values] = await gpu.read(
        [output.blocks.buffer, output.blockLogits.buffer],
        [kept * 8, kept * LOGIT_BLOCK * 4],
      );
      const [best] = topLogitsFromBlocks(
        new BigInt64Array(blockIds),
        new Float32Array(values),
        kept,
        1,
        t.vocabSize,
      );
      return best.ids[0];
    };

    let started = performance.now();
    let next = -1;
    for (const [position, id] of run.prompt.entries()) {
      next = await step(id, position, position === run.prompt.length - 1);
    }
    const tokens = [next];
    const promptMs = performance.now() - started;
    const stepMs: number[] = [];
    if (!run.pipelined) {
      for (let i = 0; i < run.steps; i++) {
        started = performance.now();
        tokens.push(await step(tokens[i], run.prompt.length + i, true));
        stepMs.push(performance.now() - started);
      }
      return { tokens, promptMs, stepMs };
    }
    // One read in flight behind the queued steps; a step's time is the gap between two tokens.
    const readToken = async () =>
      Number(new BigInt64Array(await gpu.readSoon(output.nextToken.buffer, 8))[0]);
    let pending: Promise<number> | undefined;
    let last = performance.now();
    const arrived = (token: number) => {
      tokens.push(token);
      const now = performance.now();
      stepMs.push(now - last);
      last = now;
    };
    for (let i = 0; i < run.steps; i++) {
      await step(-1, run.prompt.length + i, false);
      const reading = readToken();
      if (pending) arrived(await pending);
      pending = reading;
    }
    if (pending) arrived(await pending);
    return { tokens, promptMs, stepMs };
  } finally {
    await session.release();
    gpu.destroy();
  }
}
