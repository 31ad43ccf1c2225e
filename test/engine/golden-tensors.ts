/** Shared access to the golden Qwen3-VL fixtures (test/fixtures/qwen3vl-tiny, see GOLDEN.md). */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { readModelConfig } from '../../server/engine/checkpoint/config';

export const TINY_DIR = join(__dirname, '..', 'fixtures', 'qwen3vl-tiny');
export const TINY_MODEL = join(TINY_DIR, 'model');

export interface TensorRef {
  file: string;
  shape: number[];
}

export interface GoldenCase {
  name: string;
  input_ids: number[];
  image_grid_thw?: [number, number, number][];
  pixel_values?: TensorRef;
  image_embeds?: TensorRef;
  deepstack_embeds?: TensorRef[];
  position_ids: [number[], number[], number[]];
  rope_deltas: [[number]];
  last_logits: TensorRef;
  last_top10: { ids: number[]; values: number[] };
  greedy_new_tokens: number[];
  greedy_step_top10: { ids: number[]; values: number[] }[];
  greedy_top2_margins: number[];
}

export const golden = JSON.parse(readFileSync(join(TINY_DIR, 'golden.json'), 'utf8')) as {
  cases: GoldenCase[];
};

export function goldenCase(name: string): GoldenCase {
  const found = golden.cases.find((c) => c.name === name);
  if (!found) throw new Error(`no golden case ${name}`);
  return found;
}

export function readF32(ref: TensorRef): Float32Array {
  const bytes = readFileSync(join(TINY_DIR, ref.file));
  const out = new Float32Array(bytes.byteLength / 4);
  new Uint8Array(out.buffer).set(bytes);
  return out;
}

/**
 * A golden case's pixel_values as the engine takes them, one frame per patch: transformers
 * repeats a still image over the temporal patch (the tiny config's temporal_patch_size frames),
 * which this checks before keeping the first frame of each channel.
 */
export function goldenPixels(
  c: Pick<GoldenCase, 'name' | 'pixel_values' | 'image_grid_thw'>,
): Float32Array {
  const full = readF32(c.pixel_values!);
  const [t, h, w] = c.image_grid_thw![0];
  const patches = t * h * w;
  const { temporalPatchSize: frames, inChannels: channels } = readModelConfig(TINY_MODEL).vision;
  const slice = full.length / patches / channels / frames;
  const frame = new Float32Array(full.length / frames);
  for (let run = 0; run < patches * channels; run++) {
    const first = full.subarray(run * frames * slice, (run * frames + 1) * slice);
    for (let f = 1; f < frames; f++) {
      const other = full.subarray((run * frames + f) * slice, (run * frames + f + 1) * slice);
      if (other.some((value, i) => value !== first[i])) {
        throw new Error(`${c.name}: frame ${f} of patch ${Math.floor(run / channels)} differs`);
      }
    }
    frame.set(first, run * slice);
  }
  return frame;
}

export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) throw new Error(`length ${a.length} != ${b.length}`);
  let max = 0;
  for (let i = 0; i < a.length; i++) max = Math.max(max, Math.abs(a[i] - b[i]));
  return max;
}

export function argmax(values: ArrayLike<number>): number {
  let best = 0;
  for (let i = 1; i < values.length; i++) if (values[i] > values[best]) best = i;
  return best;
}

export function cosine(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let dot = 0;
  let na = 0;
  let nb = 0;
  for (let i = 0; i < a.length; i++) {
    dot += a[i] * b[i];
    na += a[i] * a[i];
    nb += b[i] * b[i];
  }
  return dot / Math.sqrt(na * nb);
}

export function topK(values: ArrayLike<number>, k: number): number[] {
  return Array.from({ length: values.length }, (_, i) => i)
    .sort((x, y) => values[y] - values[x])
    .slice(0, k);
}
