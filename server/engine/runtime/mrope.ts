/**
 * Text-model rotary tables from the three MRoPE position streams (spec §3.4). Frequency slot j
 * takes its position from stream T, H or W: interleaved (Qwen3-VL, HF apply_interleaved_mrope)
 * or chunked (Qwen2-VL style). cos/sin are [S, headDim/2]: the rotate-half pairs (j, j + half)
 * share frequency j, which is the table com.microsoft.RotaryEmbedding takes.
 */
import type { TextConfig } from '../checkpoint/config';

const f32 = Math.fround;

/** Which stream (0 = T, 1 = H, 2 = W) drives each of the headDim/2 frequencies. */
export function mropeStreams(section: [number, number, number], interleaved: boolean): Uint8Array {
  const half = section[0] + section[1] + section[2];
  const streams = new Uint8Array(half);
  if (interleaved) {
    // Start from T everywhere; H takes slice(1, 3*section[1], 3), W slice(2, 3*section[2], 3).
    for (const s of [1, 2] as const) {
      for (let j = s; j < 3 * section[s]; j += 3) streams[j] = s;
    }
  } else {
    streams.fill(1, section[0], section[0] + section[1]);
    streams.fill(2, section[0] + section[1]);
  }
  return streams;
}

export function textInvFreq(headDim: number, theta: number): Float32Array {
  const out = new Float32Array(headDim / 2);
  for (let j = 0; j < out.length; j++) out[j] = f32(1 / f32(theta ** f32((2 * j) / headDim)));
  return out;
}

export class MropeTables {
  private readonly invFreq: Float32Array;
  private readonly streams: Uint8Array;
  private readonly headDim: number;

  constructor(text: TextConfig) {
    this.headDim = text.headDim;
    this.invFreq = textInvFreq(text.headDim, text.ropeTheta);
    this.streams = mropeStreams(text.mropeSection, text.mropeInterleaved);
  }

  /** cos/sin [S, headDim/2] for positions given as three streams of length S. */
  compute(positions: readonly [ArrayLike<number>, ArrayLike<number>, ArrayLike<number>]): {
    cos: Float32Array;
    sin: Float32Array;
  } {
    const s = positions[0].length;
    const hd = this.headDim;
    const half = hd / 2;
    const cos = new Float32Array(s * half);
    const sin = new Float32Array(s * half);
    for (let i = 0; i < s; i++) {
      for (let j = 0; j < half; j++) {
        const angle = f32(positions[this.streams[j]][i] * this.invFreq[j]);
        cos[i * half + j] = Math.cos(angle);
        sin[i * half + j] = Math.sin(angle);
      }
    }
    return { cos, sin };
  }

  /**
   * cos/sin [capacity, headDim/2] with row r for the token at cache position r: the cached
   * tokens' own positions (three streams of the same length, e.g. a prompt's), then text
   * positions going on from `next` (what each generated token gets). A static decode step's
   * attention looks its new row up here (decoder-graph.ts `staticStep`).
   */
  cacheTable(
    cached: readonly [ArrayLike<number>, ArrayLike<number>, ArrayLike<number>],
    next: number,
    capacity: number,
  ): { cos: Float32Array; sin: Float32Array } {
    const n = cached[0].length;
    if (n > capacity) throw new Error(`${n} cached positions exceed a capacity of ${capacity}`);
    const streams = cached.map((stream) => {
      const all = new Float64Array(capacity);
      all.set(stream);
      for (let r = n; r < capacity; r++) all[r] = next + r - n;
      return all;
    });
    return this.compute(streams as [Float64Array, Float64Array, Float64Array]);
  }
}
