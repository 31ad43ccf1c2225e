/**
 * The Qwen3-VL text decoder as one ONNX graph with a KV cache (spec §3), used for both prefill
 * (S prompt tokens, empty past) and decode steps (S = 1):
 *
 * inputs   input_ids [1, S] int64
 *          visual_embeds [1, S, D]     rows that replace `<|image_pad|>` embeddings (zeros elsewhere)
 *          deepstack [taps, 1, S, D]   added after layers 0..taps-1 (zeros at text rows / decode)
 *          rope_cos, rope_sin [1, S, headDim]   interleaved-MRoPE tables, shared by all layers
 *          past_key_<l>, past_value_<l> [1, kvHeads, P, headDim]
 *          seqlens_k [1] int32 (= P + S - 1), total_sequence_length [] int32 (= P + S)
 *          num_logits [1] int64        how many trailing positions get logits (1 to S)
 * outputs  logits [num_logits, vocab] for the last positions; present_key_<l>, present_value_<l>
 *
 * num_logits is 1 for prefill and plain decode steps; speculative verification asks for every
 * position of the run (the token plus its drafts), so the LM head only runs where it is needed.
 *
 * Attention is com.microsoft.GroupQueryAttention with do_rotary = 0: q/k RMSNorm and MRoPE are
 * applied before it, in that order. Past/present are plain tensors, so a WebGPU session can keep
 * them on the device (preferredOutputLocation 'gpu-buffer') and feed them straight back.
 */
import type { Qwen3VLConfig } from '../checkpoint/config';
import { TEXT_PREFIX } from '../checkpoint/weights';
import { DataType, attr } from './graph-builder';
import {
  type LayerContext,
  applyRotary,
  floatBytes,
  fusedLinear,
  linear,
  matMulNBits,
  reshape,
  rmsNorm,
} from './layers';

export const DECODER_INPUTS = {
  ids: 'input_ids',
  visual: 'visual_embeds',
  deepstack: 'deepstack',
  cos: 'rope_cos',
  sin: 'rope_sin',
  seqlens: 'seqlens_k',
  total: 'total_sequence_length',
  numLogits: 'num_logits',
  pastKey: (l: number) => `past_key_${l}`,
  pastValue: (l: number) => `past_value_${l}`,
} as const;

export const DECODER_OUTPUTS = {
  logits: 'logits',
  presentKey: (l: number) => `present_key_${l}`,
  presentValue: (l: number) => `present_value_${l}`,
} as const;

export function buildDecoderGraph(ctx: LayerContext, config: Qwen3VLConfig): void {
  const { g, weights } = ctx;
  const t = config.text;
  const F = DataType.FLOAT;
  const act = ctx.dtype;
  const d = t.hiddenSize;
  const hd = t.headDim;
  const taps = Math.max(1, config.vision.deepstackVisualIndexes.length);
  const eps = t.rmsNormEps;
  const P = (name: string) => TEXT_PREFIX + name;
  const toActivation = (x: string) => (act === F ? x : g.op('Cast', [x], { to: attr.int(act) }));

  const ids = g.input(DECODER_INPUTS.ids, DataType.INT64, [1, 'sequence']);
  const visual = toActivation(g.input(DECODER_INPUTS.visual, F, [1, 'sequence', d]));
  const deepstack = toActivation(g.input(DECODER_INPUTS.deepstack, F, [taps, 1, 'sequence', d]));
  const cos = toActivation(g.input(DECODER_INPUTS.cos, F, [1, 'sequence', hd]));
  const sin = toActivation(g.input(DECODER_INPUTS.sin, F, [1, 'sequence', hd]));
  const seqlens = g.input(DECODER_INPUTS.seqlens, DataType.INT32, [1]);
  const total = g.input(DECODER_INPUTS.total, DataType.INT32, []);
  const numLogits = g.input(DECODER_INPUTS.numLogits, DataType.INT64, [1]);

  // Embedding gather; int4 builds keep the table in fp16 (gathered rows are cast up).
  const embedName = P('embed_tokens.weight');
  const embedShape = weights.shape(embedName, [t.vocabSize, d]);
  const embedType = ctx.linearFormat === 'int4' ? DataType.FLOAT16 : act;
  const embed = g.initializer(embedName, embedType, embedShape, () =>
    floatBytes(weights.read(embedName), embedType),
  );
  let gathered = g.op('Gather', [embed, ids], { axis: attr.int(0) });
  if (embedType !== act) gathered = g.op('Cast', [gathered], { to: attr.int(act) });
  const isImage = g.op('Equal', [ids, g.constInt64([config.imageTokenId], [])]);
  let h = g.op('Where', [g.op('Unsqueeze', [isImage, g.constInt64([2])]), visual, gathered]);

  // Rotary tables broadcast over heads: [1, S, 1, hd].
  const cosH = g.op('Unsqueeze', [cos, g.constInt64([2])]);
  const sinH = g.op('Unsqueeze', [sin, g.constInt64([2])]);

  for (let l = 0; l < t.numLayers; l++) {
    const p = P(`layers.${l}.`);
    const a = rmsNorm(ctx, h, `${p}input_layernorm.weight`, eps);
    // q, k and v in one matrix multiply.
    const [qProj, kProj, v] = fusedLinear(
      ctx,
      a,
      ['q', 'k', 'v'].map((name) => `${p}self_attn.${name}_proj`),
    );
    const qk = (proj: string, name: 'q' | 'k', heads: number) => {
      const split = reshape(g, proj, [1, -1, heads, hd]);
      const normed = rmsNorm(ctx, split, `${p}self_attn.${name}_norm.weight`, eps);
      return reshape(g, applyRotary(g, normed, cosH, sinH), [1, -1, heads * hd]);
    };
    const q = qk(qProj, 'q', t.numHeads);
    const k = qk(kProj, 'k', t.numKvHeads);
    const pastK = g.input(DECODER_INPUTS.pastKey(l), act, [1, t.numKvHeads, 'past', hd]);
    const pastV = g.input(DECODER_INPUTS.pastValue(l), act, [1, t.numKvHeads, 'past', hd]);
    const [attn] = g.node('GroupQueryAttention', [q, k, v, pastK, pastV, seqlens, total], {
      outputs: [g.fresh('attn'), DECODER_OUTPUTS.presentKey(l), DECODER_OUTPUTS.presentValue(l)],
      domain: 'com.microsoft',
      attrs: {
        num_heads: attr.int(t.numHeads),
        kv_num_heads: attr.int(t.numKvHeads),
        scale: attr.float(1 / Math.sqrt(hd)),
        do_rotary: attr.int(0),
      },
    });
    for (const present of [DECODER_OUTPUTS.presentKey(l), DECODER_OUTPUTS.presentValue(l)]) {
      g.output(present, act, [1, t.numKvHeads, 'total', hd]);
    }
    h = g.op('Add', [h, linear(ctx, attn, `${p}self_attn.o_proj`)]);

    const m = rmsNorm(ctx, h, `${p}post_attention_layernorm.weight`, eps);
    const [gate, up] = fusedLinear(ctx, m, [`${p}mlp.gate_proj`, `${p}mlp.up_proj`]);
    const silu = g.op('Mul', [gate, g.op('Sigmoid', [gate])]);
    h = g.op('Add', [h, linear(ctx, g.op('Mul', [silu, up]), `${p}mlp.down_proj`)]);

    if (l < config.vision.deepstackVisualIndexes.length) {
      const tap = g.op('Gather', [deepstack, g.constInt64([l], [])], { axis: attr.int(0) });
      h = g.op('Add', [h, tap]);
    }
  }

  // The last num_logits positions: [1, S, D] -> [N, D], final norm, tied (or separate) LM head.
  const last = reshape(
    g,
    g.op('Slice', [h, g.op('Neg', [numLogits]), g.constInt64([2 ** 62]), g.constInt64([1])]),
    [-1, d],
  );
  const normed = rmsNorm(ctx, last, P('norm.weight'), eps);
  let logits: string;
  const headName = t.tieWordEmbeddings ? embedName : 'lm_head.weight';
  if (ctx.linearFormat === 'int4') {
    // MatMulNBits needs its own quantised copy; the gather above keeps the float table.
    logits = matMulNBits(ctx, normed, `${headName}.lm_head`, t.vocabSize, d, () =>
      weights.read(headName),
    );
  } else if (t.tieWordEmbeddings) {
    logits = g.op('Gemm', [normed, embed], { transB: attr.int(1) });
  } else {
    logits = linear(ctx, normed, 'lm_head');
  }
  if (act !== F) logits = g.op('Cast', [logits], { to: attr.int(F) });
  g.node('Identity', [logits], { outputs: [DECODER_OUTPUTS.logits] });
  g.output(DECODER_OUTPUTS.logits, F, ['logit_rows', t.vocabSize]);
}
