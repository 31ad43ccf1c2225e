/**
 * The weight plan: which tensors a Qwen3-VL checkpoint must hold (names and shapes, derived from
 * its config), checked before anything is built, and a `WeightSource` the graph builders pull
 * tensors from. A missing, unexpected or mis-shaped tensor fails with its name.
 */
import { EngineError } from '../errors';
import type { Qwen3VLConfig } from './config';
import type { SafetensorsCheckpoint } from './safetensors';

export interface WeightSource {
  /** Every tensor on offer, name -> shape. */
  readonly shapes: ReadonlyMap<string, readonly number[]>;
  /** The tensor's values widened to fp32 (never called in a dry run). */
  readFloat32(name: string): Float32Array;
}

export const VISION_PREFIX = 'model.visual.';
export const TEXT_PREFIX = 'model.language_model.';
export const LM_HEAD = 'lm_head.weight';

/** Every tensor the engine consumes, with its shape. */
export function expectedTensors(config: Qwen3VLConfig): Map<string, number[]> {
  const out = new Map<string, number[]>();
  const v = config.vision;
  const t = config.text;
  const V = (name: string, shape: number[]) => out.set(VISION_PREFIX + name, shape);
  const T = (name: string, shape: number[]) => out.set(TEXT_PREFIX + name, shape);

  const dv = v.hiddenSize;
  const merged = dv * v.spatialMergeSize ** 2;
  V('patch_embed.proj.weight', [dv, v.inChannels, v.temporalPatchSize, v.patchSize, v.patchSize]);
  V('patch_embed.proj.bias', [dv]);
  V('pos_embed.weight', [v.numPositionEmbeddings, dv]);
  for (let i = 0; i < v.depth; i++) {
    const b = `blocks.${i}.`;
    for (const norm of ['norm1', 'norm2']) {
      V(`${b}${norm}.weight`, [dv]);
      V(`${b}${norm}.bias`, [dv]);
    }
    V(`${b}attn.qkv.weight`, [3 * dv, dv]);
    V(`${b}attn.qkv.bias`, [3 * dv]);
    V(`${b}attn.proj.weight`, [dv, dv]);
    V(`${b}attn.proj.bias`, [dv]);
    V(`${b}mlp.linear_fc1.weight`, [v.intermediateSize, dv]);
    V(`${b}mlp.linear_fc1.bias`, [v.intermediateSize]);
    V(`${b}mlp.linear_fc2.weight`, [dv, v.intermediateSize]);
    V(`${b}mlp.linear_fc2.bias`, [dv]);
  }
  const merger = (prefix: string, normSize: number) => {
    V(`${prefix}norm.weight`, [normSize]);
    V(`${prefix}norm.bias`, [normSize]);
    V(`${prefix}linear_fc1.weight`, [merged, merged]);
    V(`${prefix}linear_fc1.bias`, [merged]);
    V(`${prefix}linear_fc2.weight`, [v.outHiddenSize, merged]);
    V(`${prefix}linear_fc2.bias`, [v.outHiddenSize]);
  };
  merger('merger.', dv);
  v.deepstackVisualIndexes.forEach((_, i) => merger(`deepstack_merger_list.${i}.`, merged));

  const d = t.hiddenSize;
  const q = t.numHeads * t.headDim;
  const kv = t.numKvHeads * t.headDim;
  T('embed_tokens.weight', [t.vocabSize, d]);
  for (let i = 0; i < t.numLayers; i++) {
    const l = `layers.${i}.`;
    T(`${l}input_layernorm.weight`, [d]);
    T(`${l}post_attention_layernorm.weight`, [d]);
    T(`${l}self_attn.q_proj.weight`, [q, d]);
    T(`${l}self_attn.k_proj.weight`, [kv, d]);
    T(`${l}self_attn.v_proj.weight`, [kv, d]);
    T(`${l}self_attn.o_proj.weight`, [d, q]);
    T(`${l}self_attn.q_norm.weight`, [t.headDim]);
    T(`${l}self_attn.k_norm.weight`, [t.headDim]);
    T(`${l}mlp.gate_proj.weight`, [t.intermediateSize, d]);
    T(`${l}mlp.up_proj.weight`, [t.intermediateSize, d]);
    T(`${l}mlp.down_proj.weight`, [d, t.intermediateSize]);
  }
  T('norm.weight', [d]);
  if (!t.tieWordEmbeddings) out.set(LM_HEAD, [t.vocabSize, d]);
  return out;
}

/**
 * Checks a checkpoint's tensor list against the plan. With tied embeddings an `lm_head.weight`
 * (some exports write the duplicate) is accepted when its shape matches and is not used: the
 * graphs read the embedding for both roles.
 */
export function validateWeights(
  config: Qwen3VLConfig,
  shapes: ReadonlyMap<string, readonly number[]>,
  source: string,
): void {
  const expected = expectedTensors(config);
  if (config.text.tieWordEmbeddings && shapes.has(LM_HEAD)) {
    expected.set(LM_HEAD, [config.text.vocabSize, config.text.hiddenSize]);
  }
  for (const [name, shape] of expected) {
    const actual = shapes.get(name);
    if (!actual) {
      throw new EngineError(
        'bad_checkpoint',
        `${source}: missing tensor ${name} (expected shape [${shape}])`,
      );
    }
    if (actual.length !== shape.length || actual.some((n, i) => n !== shape[i])) {
      throw new EngineError(
        'bad_checkpoint',
        `${source}: tensor ${name} has shape [${actual}], expected [${shape}] from config.json`,
      );
    }
  }
  for (const [name, shape] of shapes) {
    if (!expected.has(name)) {
      throw new EngineError(
        'bad_checkpoint',
        `${source}: unexpected tensor ${name} [${shape}]: not part of a Qwen3-VL dense checkpoint with this config.json`,
      );
    }
  }
}

/** A WeightSource over a safetensors checkpoint. */
export function checkpointSource(checkpoint: SafetensorsCheckpoint): WeightSource {
  const shapes = new Map<string, readonly number[]>();
  for (const [name, entry] of checkpoint.tensors) shapes.set(name, entry.shape);
  return { shapes, readFloat32: (name) => checkpoint.readFloat32(name) };
}

/** Shapes only (a layout file): building from it is a dry run that never reads weights. */
export function shapeOnlySource(shapes: Record<string, number[]>): WeightSource {
  return {
    shapes: new Map(Object.entries(shapes)),
    readFloat32: (name) => {
      throw new Error(`shape-only weight source cannot read ${name}`);
    },
  };
}

/** Tracks what a build consumed, so a plan/graph mismatch is caught (every tensor used once). */
export class WeightTracker {
  private readonly used = new Set<string>();
  private readonly seen = new Set<string>();

  /** `onRead` hears each tensor the first time its values are read (build progress). */
  constructor(
    readonly source: WeightSource,
    private readonly onRead?: (name: string) => void,
  ) {}

  /** Shape of a tensor the graph is about to use; throws naming it when absent or mis-shaped. */
  shape(name: string, expected?: number[]): number[] {
    const shape = this.source.shapes.get(name);
    if (!shape) throw new EngineError('bad_checkpoint', `missing tensor ${name}`);
    if (expected && (shape.length !== expected.length || shape.some((n, i) => n !== expected[i]))) {
      throw new EngineError(
        'bad_checkpoint',
        `tensor ${name} has shape [${shape}], expected [${expected}]`,
      );
    }
    this.used.add(name);
    return [...shape];
  }

  read(name: string): Float32Array {
    this.used.add(name);
    const values = this.source.readFloat32(name);
    if (!this.seen.has(name)) {
      this.seen.add(name);
      this.onRead?.(name);
    }
    return values;
  }

  get consumed(): ReadonlySet<string> {
    return this.used;
  }
}
