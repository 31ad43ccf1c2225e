/**
 * What a decoder run of n tokens costs, counted in one-token runs (a plain step costs 1). The
 * draft planner weighs a draft's chance of being kept against it. The curves are measured with
 * scripts/bench/profile-decode.ts (its verify_run lines, `in_steps`), per execution provider,
 * because their shapes differ: on the CPU every token adds about the same compute, while
 * onnxruntime's WebGPU provider switches kernels with the number of rows.
 */
import type { Device } from '../contracts';

export type RunCost = (tokens: number) => number;

/**
 * Straight lines through measured [tokens, cost] points (tokens ascending, the first [1, 1]),
 * carried on past the last point by the last segment's slope.
 */
export function runCostThrough(points: readonly (readonly [number, number])[]): RunCost {
  if (points.length < 2 || points[0][0] !== 1 || points[0][1] !== 1) {
    throw new Error('a run cost needs [1, 1] and at least one more point');
  }
  return (tokens) => {
    let i = 1;
    while (i < points.length - 1 && points[i][0] < tokens) i++;
    const [[x0, y0], [x1, y1]] = [points[i - 1], points[i]];
    return y0 + ((tokens - x0) * (y1 - y0)) / (x1 - x0);
  };
}

/**
 * CPU, 2B int4, 2 cores (docs/bench/2026-11-26-cpu): 110 ms for one token and 20 ms more per
 * token, in a straight line up to 17 tokens.
 */
export const CPU_RUN_COST = runCostThrough([
  [1, 1],
  [17, 3.91],
]);

/**
 * WebGPU on an H200 (onnxruntime-node 1.30, 2B int4, docs/bench/2026-11-27-h200: the mean of
 * three profile runs on two machines, verification runs at a 1,024-token cache returning the
 * best logits only): 2 and 3 tokens cost about 1.25 steps; from 4 rows on, MatMulNBits takes a
 * tiled kernel made for prefill and the fused decode operators no longer apply, so 4 tokens
 * cost 3.5 steps, but 17 only 4 and 33 5.3 (about 40, 46 and 60 ms whatever the step took).
 */
export const WEBGPU_RUN_COST = runCostThrough([
  [1, 1],
  [2, 1.25],
  [3, 1.28],
  [4, 3.54],
  [5, 3.62],
  [9, 3.7],
  [17, 3.96],
  [33, 5.27],
]);

/** CUDA, DirectML and Core ML are not measured: they get the CPU's straight line. */
export function runCostFor(device: Device): RunCost {
  return device === 'webgpu' ? WEBGPU_RUN_COST : CPU_RUN_COST;
}
