/**
 * Building blocks shared by the vision and decoder graphs: weights in the build's storage format
 * (fp32, fp16, int4 `MatMulNBits` or int8 `MatMulIntegerToFloat`), linear layers, norms and the
 * rotate-half rotary embedding.
 */
import type { WeightTracker } from '../checkpoint/weights';
import { toFloat16 } from './float16';
import { DataType, GraphBuilder, attr } from './graph-builder';
import { quantizeInt4, INT4_BLOCK_SIZE } from './quantize-int4';
import { type Int8Weight, quantizeInt8, quantizeInt8Blocks } from './quantize-int8';

/**
 * How linear weights are stored: plain floats in the activation type, 4-bit blocks, 8-bit
 * channels with 8-bit activations (fp32 activations only, see matMulInt8), or 8-bit blocks
 * (MatMulNBits, see matMulNBits).
 */
export type WeightFormat = 'float' | 'int4' | 'int8' | 'int8-blocks';

export interface LayerContext {
  g: GraphBuilder;
  weights: WeightTracker;
  /** Activation (and float weight) element type. */
  dtype: DataType;
  /** Storage for the big linear layers. */
  linearFormat: WeightFormat;
  /**
   * The decoder's embedding table and LM head, where they differ from the layers' (the CPU
   * prefill decoder: 8-bit layers, the int4 decoder's head). Default: linearFormat.
   */
  headFormat?: WeightFormat;
  /** MatMulNBits accuracy_level (default 4: int8 activations, the fast CPU and WebGPU path). */
  int4AccuracyLevel?: number;
  /** int4 without zero points (quantize-int4.ts), which onnxruntime's WebGPU fusions need. */
  int4Symmetric?: boolean;
}

/** Bytes of an fp32 array in the activation type. */
export function floatBytes(values: Float32Array, dtype: DataType): Uint8Array {
  const typed = dtype === DataType.FLOAT16 ? toFloat16(values) : values;
  return new Uint8Array(typed.buffer, typed.byteOffset, typed.byteLength);
}

/** A checkpoint tensor as an initializer in the activation type, same shape. */
export function weight(ctx: LayerContext, name: string, shape?: number[]): string {
  const dims = ctx.weights.shape(name, shape);
  return ctx.g.initializer(name, ctx.dtype, dims, () =>
    floatBytes(ctx.weights.read(name), ctx.dtype),
  );
}

/** [out, in] row-major -> [in, out] row-major, the layout MatMul wants. */
export function transpose(values: Float32Array, rows: number, cols: number): Float32Array {
  const out = new Float32Array(values.length);
  for (let r = 0; r < rows; r++) {
    const base = r * cols;
    for (let c = 0; c < cols; c++) out[c * rows + r] = values[base + c];
  }
  return out;
}

/**
 * y = x @ W^T (+ b) for a checkpoint Linear whose weight is `${prefix}.weight` [out, in].
 * `outIn` views a higher-rank weight as [out, in] (the patch embedding's Conv3d kernel).
 */
export function linear(
  ctx: LayerContext,
  x: string,
  prefix: string,
  options: { bias?: boolean; outIn?: [number, number]; format?: WeightFormat } = {},
): string {
  const { weights } = ctx;
  const name = `${prefix}.weight`;
  const shape = weights.shape(name);
  const [out, inner] = options.outIn ?? (shape as [number, number]);
  if (out * inner !== shape.reduce((a, b) => a * b, 1)) {
    throw new Error(`${name} [${shape}] cannot be viewed as [${out}, ${inner}]`);
  }
  return linearFrom(ctx, x, prefix, [out, inner], () => weights.read(name), options);
}

/**
 * y = x @ W^T (+ b) for an [out, in] weight that `read` derives from the checkpoint tensor
 * `${prefix}.weight`, e.g. a kernel folded over a repeated input.
 */
export function linearFrom(
  ctx: LayerContext,
  x: string,
  prefix: string,
  [out, inner]: [number, number],
  read: () => Float32Array,
  options: { bias?: boolean; format?: WeightFormat } = {},
): string {
  const name = `${prefix}.weight`;
  ctx.weights.shape(name); // consumed even by a dry run, which reads nothing
  const format = options.format ?? ctx.linearFormat;
  const bias = options.bias ? weight(ctx, `${prefix}.bias`, [out]) : undefined;
  return matMul(ctx, x, name, [out, inner], read, format, bias);
}

/**
 * x @ W^T (+ bias) for a [n, k] weight produced by `read`, stored in `format` (block formats
 * need k in whole blocks; other weights stay float).
 */
function matMul(
  ctx: LayerContext,
  x: string,
  name: string,
  [n, k]: [number, number],
  read: () => Float32Array,
  format: WeightFormat,
  bias?: string,
): string {
  const blocks = k % INT4_BLOCK_SIZE === 0;
  if (format === 'int4' && blocks) return matMulNBits(ctx, x, name, n, k, read, bias);
  if (format === 'int8-blocks' && blocks) return matMulNBits(ctx, x, name, n, k, read, bias, 8);
  if (format === 'int8') return matMulInt8(ctx, x, name, n, k, read, bias);
  const w = ctx.g.initializer(`${name}.T`, ctx.dtype, [k, n], () =>
    floatBytes(transpose(read(), n, k), ctx.dtype),
  );
  const y = ctx.g.op('MatMul', [x, w]);
  return bias ? ctx.g.op('Add', [y, bias]) : y;
}

/**
 * Several Linears over the same input as one matrix multiply (rows of their weights stacked),
 * split back into one output per prefix: fewer, bigger kernels (q/k/v, gate/up). The result is
 * the same as separate layers; only the node count changes. 8-bit weights stay apart, sharing
 * one quantisation of x.
 */
export function fusedLinear(ctx: LayerContext, x: string, prefixes: string[]): string[] {
  const { g, weights } = ctx;
  const names = prefixes.map((prefix) => `${prefix}.weight`);
  const shapes = names.map((name) => weights.shape(name));
  const inner = shapes[0][1];
  if (shapes.some((shape) => shape.length !== 2 || shape[1] !== inner)) {
    throw new Error(`cannot fuse ${names.join(', ')}: shapes ${shapes.map((s) => `[${s}]`)}`);
  }
  const outs = shapes.map((shape) => shape[0]);
  if (ctx.linearFormat === 'int8') {
    // x is quantised once and each weight gets its own product: no Split, which copies the
    // whole fused output (gate/up and q/k/v of a 1,024-token prompt: 163 of 5,400 ms).
    const rows = quantizeRows(ctx, x, inner);
    return names.map((name, i) => int8Product(ctx, rows, name, outs[i], () => weights.read(name)));
  }
  const total = outs.reduce((a, b) => a + b, 0);
  const stacked = (): Float32Array => {
    const out = new Float32Array(total * inner);
    let offset = 0;
    for (const name of names) {
      const rows = weights.read(name);
      out.set(rows, offset);
      offset += rows.length;
    }
    return out;
  };
  const fusedName = `${prefixes.join('+')}.weight`;
  const y = matMul(ctx, x, fusedName, [total, inner], stacked, ctx.linearFormat);
  return g.node('Split', [y, g.constInt64(outs)], {
    outputs: prefixes.length,
    attrs: { axis: attr.int(-1) },
  });
}

/**
 * A MatMulNBits node over a [n, k] fp32 weight produced by `read` (quantised at build time):
 * 4-bit blocks (quantize-int4.ts), or 8-bit blocks (quantize-int8.ts quantizeInt8Blocks,
 * always symmetric: MatMulNBits then takes 128 as the zero point).
 */
export function matMulNBits(
  ctx: LayerContext,
  x: string,
  name: string,
  n: number,
  k: number,
  read: () => Float32Array,
  bias?: string,
  bits: 4 | 8 = 4,
): string {
  const { g } = ctx;
  const blocks = k / INT4_BLOCK_SIZE;
  const symmetric = bits === 8 || (ctx.int4Symmetric ?? false);
  type Blocks = { packed: Uint8Array; scales: Float32Array; zeroPoints?: Uint8Array };
  let quantized: Blocks | undefined;
  const get = (): Blocks =>
    (quantized ??=
      bits === 8
        ? quantizeInt8Blocks(read(), n, k, INT4_BLOCK_SIZE)
        : quantizeInt4(read(), n, k, { symmetric }));
  const tag = bits === 8 ? 'q8b' : 'q4';
  // Initializers are written in order; the last one lets the quantised copy go.
  const packed = g.initializer(
    `${name}.${tag}`,
    DataType.UINT8,
    [n, blocks, (INT4_BLOCK_SIZE * bits) / 8],
    () => get().packed,
  );
  const scales = g.initializer(`${name}.${tag}_scales`, ctx.dtype, [n, blocks], () => {
    const bytes = floatBytes(get().scales, ctx.dtype);
    if (symmetric) quantized = undefined;
    return bytes;
  });
  const inputs = [x, packed, scales];
  if (!symmetric) {
    inputs.push(
      g.initializer(`${name}.q4_zeros`, DataType.UINT8, [n, Math.ceil(blocks / 2)], () => {
        const z = get().zeroPoints!;
        quantized = undefined;
        return z;
      }),
    );
  }
  if (bias) {
    // MatMulNBits takes the bias at input 5 (after zero_points and g_idx).
    while (inputs.length < 5) inputs.push('');
    inputs.push(bias);
  }
  return g.op(
    'MatMulNBits',
    inputs,
    {
      K: attr.int(k),
      N: attr.int(n),
      bits: attr.int(bits),
      block_size: attr.int(INT4_BLOCK_SIZE),
      // 4: int8 activations inside the kernel; the fast path on CPU and on WebGPU (DP4A).
      accuracy_level: attr.int(ctx.int4AccuracyLevel ?? 4),
    },
    'com.microsoft',
  );
}

/**
 * y = x @ W^T (+ bias) with 8-bit weights (quantize-int8.ts) and x quantised per row at run
 * time: each row's scale is its largest magnitude over 127, so one row with large values (a
 * token with outlier activations) does not coarsen the others, as one scale for the whole
 * matrix (DynamicQuantizeMatMul) would. The product runs in onnxruntime's integer GEMM, several
 * times faster on CPUs than fp32 MatMul (VNNI / AMX / dot-product instructions). x is viewed
 * as 2-D [rows, k] (QuantizeLinear's per-axis scale is 1-D); rows are stored as uint8 around
 * 128.
 */
export function matMulInt8(
  ctx: LayerContext,
  x: string,
  name: string,
  n: number,
  k: number,
  read: () => Float32Array,
  bias?: string,
): string {
  return int8Product(ctx, quantizeRows(ctx, x, k), name, n, read, bias);
}

/** x viewed as [rows, k] and quantised per row, for one or more 8-bit products. */
interface QuantizedRows {
  x: string;
  k: number;
  values: string;
  rowScale: string;
  zero: string;
}

function quantizeRows(ctx: LayerContext, x: string, k: number): QuantizedRows {
  const { g } = ctx;
  if (ctx.dtype !== DataType.FLOAT) throw new Error(`${x}: int8 weights need fp32 activations`);
  const f32 = (v: number) => g.constFloat([v], DataType.FLOAT, []);
  const rows = reshape(g, x, [-1, k]);
  const rowMax = g.op('ReduceMax', [g.op('Abs', [rows]), g.constInt64([-1])], {
    keepdims: attr.int(0),
  });
  // Floored so that an all-zero row quantises to zeros instead of dividing by zero.
  const rowScale = g.op('Mul', [g.op('Max', [rowMax, f32(1e-30)]), f32(1 / 127)]);
  const zero = g.constUint8(128);
  const rowZeros = g.op('Expand', [zero, g.op('Shape', [rowScale])]);
  const values = g.op('QuantizeLinear', [rows, rowScale, rowZeros], { axis: attr.int(0) });
  return { x, k, values, rowScale, zero };
}

/** One 8-bit product over rows quantised by quantizeRows, back in x's shape with n columns. */
function int8Product(
  ctx: LayerContext,
  rows: QuantizedRows,
  name: string,
  n: number,
  read: () => Float32Array,
  bias?: string,
): string {
  const { g } = ctx;
  let quantized: Int8Weight | undefined;
  const get = () => (quantized ??= quantizeInt8(read(), n, rows.k));
  const w = g.initializer(`${name}.q8`, DataType.INT8, [rows.k, n], () => {
    const { values } = get();
    return new Uint8Array(values.buffer, values.byteOffset, values.byteLength);
  });
  const wScales = g.initializer(`${name}.q8_scales`, DataType.FLOAT, [n], () => {
    const { scales } = get();
    quantized = undefined;
    return new Uint8Array(scales.buffer);
  });
  const one = g.constFloat([1], DataType.FLOAT, []);
  const product = g.op(
    'MatMulIntegerToFloat',
    [rows.values, w, one, wScales, rows.zero],
    {},
    'com.microsoft',
  );
  const scaled = g.op('Mul', [product, g.op('Unsqueeze', [rows.rowScale, g.constInt64([1])])]);
  const leading = g.op('Shape', [rows.x], { end: attr.int(-1) });
  const y = g.op('Reshape', [
    scaled,
    g.op('Concat', [leading, g.constInt64([n])], { axis: attr.int(0) }),
  ]);
  return bias ? g.op('Add', [y, bias]) : y;
}

export function layerNorm(ctx: LayerContext, x: string, prefix: string, eps: number): string {
  const w = weight(ctx, `${prefix}.weight`);
  const b = weight(ctx, `${prefix}.bias`);
  return ctx.g.op('LayerNormalization', [x, w, b], {
    axis: attr.int(-1),
    epsilon: attr.float(eps),
    stash_type: attr.int(1),
  });
}

/** RMSNorm over the last axis; statistics in fp32 (stash_type 1) even for fp16 activations. */
export function rmsNorm(ctx: LayerContext, x: string, weightName: string, eps: number): string {
  const w = weight(ctx, weightName);
  return ctx.g.op('SimplifiedLayerNormalization', [x, w], {
    axis: attr.int(-1),
    epsilon: attr.float(eps),
    stash_type: attr.int(1),
  });
}

/**
 * RMSNorm(x + skip) and the sum x + skip itself (the residual stream goes on) in one op,
 * com.microsoft.SkipSimplifiedLayerNormalization: one kernel where an Add and a norm were two.
 */
export function addRmsNorm(
  ctx: LayerContext,
  x: string,
  skip: string,
  weightName: string,
  eps: number,
): [normed: string, sum: string] {
  const { g } = ctx;
  const [normed, , , sum] = g.node(
    'SkipSimplifiedLayerNormalization',
    [x, skip, weight(ctx, weightName)],
    {
      outputs: [g.fresh('normed'), '', '', g.fresh('residual')],
      attrs: { epsilon: attr.float(eps) },
      domain: 'com.microsoft',
    },
  );
  return [normed, sum];
}

export function reshape(g: GraphBuilder, x: string, dims: number[]): string {
  return g.op('Reshape', [x, g.constInt64(dims)]);
}

export function gelu(g: GraphBuilder, x: string, approximate: 'tanh' | 'none'): string {
  return g.op('Gelu', [x], approximate === 'tanh' ? { approximate: attr.string('tanh') } : {});
}
