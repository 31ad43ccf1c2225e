/**
 * Reads a Hugging Face Qwen3-VL `config.json` into the sizes the engine needs. Accepts both the
 * transformers-5 `rope_parameters` and the older `rope_scaling` + `rope_theta` spellings.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { EngineError } from '../errors';

export interface TextConfig {
  hiddenSize: number;
  intermediateSize: number;
  numLayers: number;
  numHeads: number;
  numKvHeads: number;
  headDim: number;
  vocabSize: number;
  rmsNormEps: number;
  ropeTheta: number;
  /** Frequencies per stream (t, h, w); sums to headDim / 2. */
  mropeSection: [number, number, number];
  mropeInterleaved: boolean;
  maxPositionEmbeddings: number;
  tieWordEmbeddings: boolean;
}

export interface VisionConfig {
  depth: number;
  hiddenSize: number;
  intermediateSize: number;
  numHeads: number;
  inChannels: number;
  patchSize: number;
  temporalPatchSize: number;
  spatialMergeSize: number;
  outHiddenSize: number;
  numPositionEmbeddings: number;
  deepstackVisualIndexes: number[];
  hiddenAct: string;
  ropeTheta: number;
}

export interface Qwen3VLConfig {
  text: TextConfig;
  vision: VisionConfig;
  imageTokenId: number;
  videoTokenId: number;
  visionStartTokenId: number;
  visionEndTokenId: number;
}

type Json = Record<string, unknown>;

export function readModelConfig(modelDir: string): Qwen3VLConfig {
  const path = join(modelDir, 'config.json');
  let raw: Json;
  try {
    raw = JSON.parse(readFileSync(path, 'utf8')) as Json;
  } catch (error) {
    const missing = (error as NodeJS.ErrnoException).code === 'ENOENT';
    throw new EngineError(
      missing ? 'model_not_found' : 'bad_checkpoint',
      missing
        ? `No config.json in ${modelDir}: is this a Hugging Face checkpoint directory?`
        : `Cannot parse ${path}: ${(error as Error).message}`,
      { cause: error },
    );
  }
  return parseModelConfig(raw, path);
}

export function parseModelConfig(raw: Json, source = 'config.json'): Qwen3VLConfig {
  if (raw.model_type !== 'qwen3_vl') {
    throw new EngineError(
      'bad_checkpoint',
      `${source}: model_type is ${JSON.stringify(raw.model_type)}, expected "qwen3_vl" (a Qwen3-VL dense checkpoint such as Qwen/Qwen3-VL-2B-Instruct)`,
    );
  }
  const text = object(raw, 'text_config', source);
  const vision = object(raw, 'vision_config', source);
  const rope = (text.rope_parameters ?? text.rope_scaling ?? raw.rope_scaling ?? {}) as Json;
  const ropeTheta = (rope.rope_theta ?? text.rope_theta ?? raw.rope_theta) as number | undefined;
  const headDim =
    (text.head_dim as number | undefined) ??
    num(text, 'hidden_size', source) / num(text, 'num_attention_heads', source);
  const section = (rope.mrope_section as number[] | undefined) ?? defaultSection(headDim);
  if (section.length !== 3 || section.reduce((a, b) => a + b, 0) !== headDim / 2) {
    throw new EngineError(
      'bad_checkpoint',
      `${source}: mrope_section ${JSON.stringify(section)} must have 3 entries summing to head_dim/2 = ${headDim / 2}`,
    );
  }
  const visionRope = (vision.rope_parameters ?? {}) as Json;
  return {
    text: {
      hiddenSize: num(text, 'hidden_size', source),
      intermediateSize: num(text, 'intermediate_size', source),
      numLayers: num(text, 'num_hidden_layers', source),
      numHeads: num(text, 'num_attention_heads', source),
      numKvHeads: num(text, 'num_key_value_heads', source),
      headDim,
      vocabSize: num(text, 'vocab_size', source),
      rmsNormEps: (text.rms_norm_eps as number | undefined) ?? 1e-6,
      ropeTheta: ropeTheta ?? 5_000_000,
      mropeSection: section as [number, number, number],
      mropeInterleaved: (rope.mrope_interleaved as boolean | undefined) ?? true,
      maxPositionEmbeddings: (text.max_position_embeddings as number | undefined) ?? 262144,
      tieWordEmbeddings: (raw.tie_word_embeddings ?? text.tie_word_embeddings ?? true) as boolean,
    },
    vision: {
      depth: num(vision, 'depth', source),
      hiddenSize: num(vision, 'hidden_size', source),
      intermediateSize: num(vision, 'intermediate_size', source),
      numHeads: num(vision, 'num_heads', source),
      inChannels: (vision.in_channels as number | undefined) ?? 3,
      patchSize: num(vision, 'patch_size', source),
      temporalPatchSize: num(vision, 'temporal_patch_size', source),
      spatialMergeSize: num(vision, 'spatial_merge_size', source),
      outHiddenSize: num(vision, 'out_hidden_size', source),
      numPositionEmbeddings: num(vision, 'num_position_embeddings', source),
      deepstackVisualIndexes: (vision.deepstack_visual_indexes as number[] | undefined) ?? [],
      hiddenAct: (vision.hidden_act as string | undefined) ?? 'gelu_pytorch_tanh',
      ropeTheta: (visionRope.rope_theta as number | undefined) ?? 10000,
    },
    imageTokenId: (raw.image_token_id as number | undefined) ?? 151655,
    videoTokenId: (raw.video_token_id as number | undefined) ?? 151656,
    visionStartTokenId: (raw.vision_start_token_id as number | undefined) ?? 151652,
    visionEndTokenId: (raw.vision_end_token_id as number | undefined) ?? 151653,
  };
}

/** Qwen3-VL's published split for head_dim 128 is [24, 20, 20]; scale it for other sizes. */
function defaultSection(headDim: number): [number, number, number] {
  const half = headDim / 2;
  const hw = Math.floor((half * 20) / 64);
  return [half - 2 * hw, hw, hw];
}

function object(raw: Json, key: string, source: string): Json {
  const value = raw[key];
  if (!value || typeof value !== 'object') {
    throw new EngineError('bad_checkpoint', `${source}: missing "${key}"`);
  }
  return value as Json;
}

function num(raw: Json, key: string, source: string): number {
  const value = raw[key];
  if (typeof value !== 'number' || !Number.isFinite(value)) {
    throw new EngineError(
      'bad_checkpoint',
      `${source}: "${key}" must be a number, got ${JSON.stringify(value)}`,
    );
  }
  return value;
}
