/**
 * Host-computed positional inputs of the vision graph (spec §2.2, §2.3). They depend only on the
 * patch grid, and are produced in float32 exactly as the reference computes them, then laid out
 * in the 2x2 merge-block order of the patches.
 */
const f32 = Math.fround;

/** torch.linspace(start, end, steps) in float32 (computed from both ends, as ATen does). */
export function linspaceF32(start: number, end: number, steps: number): Float32Array {
  const out = new Float32Array(steps);
  if (steps === 1) {
    out[0] = start;
    return out;
  }
  const step = f32((end - start) / (steps - 1));
  const half = Math.floor(steps / 2);
  for (let i = 0; i < steps; i++) {
    out[i] = i < half ? f32(start + f32(i * step)) : f32(end - f32((steps - 1 - i) * step));
  }
  return out;
}

/** For each patch n (merge order): its grid row and column, repeated over the t frames. */
export function mergeOrder(
  gridT: number,
  gridH: number,
  gridW: number,
  merge: number,
): { rows: Int32Array; cols: Int32Array } {
  const n = gridT * gridH * gridW;
  const rows = new Int32Array(n);
  const cols = new Int32Array(n);
  let i = 0;
  for (let t = 0; t < gridT; t++) {
    for (let bh = 0; bh < gridH / merge; bh++) {
      for (let bw = 0; bw < gridW / merge; bw++) {
        for (let ir = 0; ir < merge; ir++) {
          for (let ic = 0; ic < merge; ic++) {
            rows[i] = bh * merge + ir;
            cols[i] = bw * merge + ic;
            i++;
          }
        }
      }
    }
  }
  return { rows, cols };
}

/**
 * Bilinear taps into the learned [side*side, hidden] position table: index [4, N] and weight
 * [4, N], tap order (floor,floor), (floor,ceil), (ceil,floor), (ceil,ceil).
 */
export function positionTaps(
  gridThw: [number, number, number],
  numPositions: number,
  merge: number,
): { index: BigInt64Array; weight: Float32Array } {
  const [gridT, gridH, gridW] = gridThw;
  const side = Math.round(Math.sqrt(numPositions));
  const hs = linspaceF32(0, side - 1, gridH);
  const ws = linspaceF32(0, side - 1, gridW);
  const { rows, cols } = mergeOrder(gridT, gridH, gridW, merge);
  const n = rows.length;
  const index = new BigInt64Array(4 * n);
  const weight = new Float32Array(4 * n);
  for (let i = 0; i < n; i++) {
    const h = hs[rows[i]];
    const w = ws[cols[i]];
    const hf = Math.trunc(h);
    const wf = Math.trunc(w);
    const hc = Math.min(hf + 1, side - 1);
    const wc = Math.min(wf + 1, side - 1);
    const dh = f32(h - hf);
    const dw = f32(w - wf);
    const taps: [number, number][] = [
      [hf * side + wf, f32(f32(1 - dh) * f32(1 - dw))],
      [hf * side + wc, f32(f32(1 - dh) * dw)],
      [hc * side + wf, f32(dh * f32(1 - dw))],
      [hc * side + wc, f32(dh * dw)],
    ];
    taps.forEach(([idx, wt], k) => {
      index[k * n + i] = BigInt(idx);
      weight[k * n + i] = wt;
    });
  }
  return { index, weight };
}

/**
 * 2D rotary cos/sin [N, headDim]: the first quarter of the frequencies rotate by row, the
 * second by column, and the table is repeated (cat(emb, emb)) for the rotate-half pairing.
 */
export function visionRotary(
  gridThw: [number, number, number],
  headDim: number,
  theta: number,
  merge: number,
): { cos: Float32Array; sin: Float32Array } {
  const [gridT, gridH, gridW] = gridThw;
  const rotaryDim = headDim / 2; // Qwen3VLVisionRotaryEmbedding(head_dim / 2)
  const nFreq = rotaryDim / 2;
  const invFreq = new Float32Array(nFreq);
  for (let k = 0; k < nFreq; k++) invFreq[k] = f32(1 / f32(theta ** f32((2 * k) / rotaryDim)));
  // An angle depends on the row or the column alone: cos/sin once per grid line, then copied.
  const angles = (lines: number) => {
    const c = new Float32Array(lines * nFreq);
    const s = new Float32Array(lines * nFreq);
    for (let line = 0; line < lines; line++) {
      for (let k = 0; k < nFreq; k++) {
        const a = f32(line * invFreq[k]);
        c[line * nFreq + k] = Math.cos(a);
        s[line * nFreq + k] = Math.sin(a);
      }
    }
    return { c, s };
  };
  const byRow = angles(gridH);
  const byCol = angles(gridW);
  const { rows, cols } = mergeOrder(gridT, gridH, gridW, merge);
  const n = rows.length;
  const cos = new Float32Array(n * headDim);
  const sin = new Float32Array(n * headDim);
  for (let i = 0; i < n; i++) {
    const r = rows[i] * nFreq;
    const c = cols[i] * nFreq;
    const o = i * headDim;
    for (let k = 0; k < nFreq; k++) {
      cos[o + k] = cos[o + rotaryDim + k] = byRow.c[r + k];
      sin[o + k] = sin[o + rotaryDim + k] = byRow.s[r + k];
      cos[o + nFreq + k] = cos[o + rotaryDim + nFreq + k] = byCol.c[c + k];
      sin[o + nFreq + k] = sin[o + rotaryDim + nFreq + k] = byCol.s[c + k];
    }
  }
  return { cos, sin };
}
