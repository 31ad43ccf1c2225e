/**
 * bench:engine's figures from one pass of its scenarios: the JSON line (--json) or the report,
 * with decode against the memory roofline and the int4 kernel alone measured in the same run.
 */
import { basename } from 'node:path';
import type { Qwen3VLConfig } from '../../server/engine/checkpoint/config';
import type { Device, GenerationResult, Precision } from '../../server/engine/contracts';
import { DEFAULT_PROMPT_LOOKUP } from '../../server/engine/generation/prompt-lookup';
import { kvRowBytes } from '../../server/engine/runtime/kv-cache';
import { kvCacheType } from '../../server/engine/runtime/load-model';
import type { Options } from './engine-options';
import type { ScenarioResults } from './engine-scenarios';
import type { KernelCeiling } from './int4-kernel-ceiling';

export interface ReportInputs {
  options: Options;
  device: Device;
  config: Qwen3VLConfig;
  modelDir: string;
  /** memcpy's and reads' bandwidth, bytes/s (CPU only). */
  bandwidth?: number;
  readBandwidth?: number;
  kernel?: KernelCeiling;
  scenarios: ScenarioResults;
}

export function report(inputs: ReportInputs): void {
  const { options, device, config, modelDir, bandwidth, readBandwidth, kernel } = inputs;
  const s = inputs.scenarios;
  const bestStepMs = Math.min(...s.coldSteps);
  const meanStepMs = s.coldSteps.reduce((a, b) => a + b, 0) / s.coldSteps.length;
  const t = s.cold.timingsMs;
  const decodeTokS = tokS(s.cold);
  // The timed steps read the KV cache at prompt + 0 .. tokens - 2 cached rows: on average this.
  const meanCachedRows = s.cold.promptTokenIds.length + (s.cold.tokenIds.length - 2) / 2;
  const bytes = decodeBytesPerToken(config, options.precision, meanCachedRows);
  const bytesPerToken = bytes.weights + bytes.kvCache;
  const rooflineTokS = bandwidth ? bandwidth / bytesPerToken : undefined;
  const readRooflineTokS = readBandwidth ? readBandwidth / bytesPerToken : undefined;
  const peakRssMb = process.resourceUsage().maxRSS / 1024;
  const stats = s.refined.stats!;
  const coldSpecStats = s.coldSpec.stats!;
  const result = {
    device,
    precision: options.precision,
    draft_planner:
      `most ${options.draftTokens ?? DEFAULT_PROMPT_LOOKUP.draftTokens}, ` +
      (options.runCostPerToken === undefined
        ? `${device}'s run cost`
        : `linear:${options.runCostPerToken}`),
    prefill_decoder:
      options.prefillDecoder === undefined ? 'where memory allows' : options.prefillDecoder,
    graph_capture: options.graphCapture ?? null,
    graph_capture_verify_rows: options.graphCaptureVerify ?? null,
    prompt_tokens: s.cold.promptTokenIds.length,
    ttft_ms: Math.round(t.firstTokenMs),
    decode_tok_s: round(decodeTokS, 2),
    decode_tokens: s.cold.tokenIds.length,
    roofline_tok_s: rooflineTokS === undefined ? null : round(rooflineTokS, 2),
    roofline_ratio: rooflineTokS === undefined ? null : round(decodeTokS / rooflineTokS, 3),
    peak_rss_mb: Math.round(peakRssMb),
    decode_best_step_tok_s: round(1000 / bestStepMs, 2),
    // The decoder's own time per step; the rest of a token is sampling, detokenizing, streaming.
    decode_step_mean_ms: round(meanStepMs, 1),
    roofline_ratio_best_step:
      rooflineTokS === undefined ? null : round(1000 / bestStepMs / rooflineTokS, 3),
    bandwidth_gb_s: bandwidth === undefined ? null : round(bandwidth / 1e9, 1),
    read_bandwidth_gb_s: readBandwidth === undefined ? null : round(readBandwidth / 1e9, 1),
    read_roofline_ratio:
      readRooflineTokS === undefined ? null : round(decodeTokS / readRooflineTokS, 3),
    weight_bytes_per_token: Math.round(bytes.weights),
    kv_cache_bytes_per_token: Math.round(bytes.kvCache),
    kernel_tok_s: kernel ? round(1000 / kernel.allThreadsMs, 2) : null,
    kernel_gb_s: kernel ? round(kernel.bytes / kernel.allThreadsMs / 1e6, 2) : null,
    kernel_gb_s_one_thread: kernel?.oneThreadMs
      ? round(kernel.bytes / kernel.oneThreadMs / 1e6, 2)
      : null,
    kernel_ratio: kernel ? round((decodeTokS * kernel.allThreadsMs) / 1000, 3) : null,
    image: options.image.join('x'),
    preprocess_ms: round(t.preprocessMs, 1),
    vision_ms: round(t.visionMs, 1),
    prefill_ms: round(t.prefillMs, 1),
    generate_read_ahead_ttft_ms: round(s.pasted.timingsMs.firstTokenMs, 1),
    generate_read_ahead_prefilled: s.pasted.stats!.prefilledTokens,
    instruction_read_ahead_ms: round(s.instructionRead.timingsMs.totalMs, 1),
    instruction_read_ahead_prefilled: s.instructionRead.stats!.prefilledTokens,
    decode_spec_tok_s: round(tokS(s.coldSpec), 2),
    decode_spec_runs: coldSpecStats.decoderRuns,
    decode_spec_accepted_drafts: `${coldSpecStats.acceptedDrafts}/${coldSpecStats.draftTokens}`,
    decode_spec_same_tokens: sameTokens(s.coldSpec.tokenIds, s.cold.tokenIds),
    restart_ttft_ms: round(s.restarted.timingsMs.firstTokenMs, 1),
    restart_vision_ms: round(s.restarted.timingsMs.visionMs, 1),
    restart_cached_images: s.restarted.stats!.cachedImages,
    restart_follow_up_prompt_tokens: s.followUpCold.promptTokenIds.length,
    restart_follow_up_cold_ttft_ms: round(s.followUpCold.timingsMs.firstTokenMs, 1),
    restart_follow_up_ttft_ms: round(s.followUpRestored.timingsMs.firstTokenMs, 1),
    restart_follow_up_reused_tokens: s.followUpRestored.stats!.reusedTokens,
    restart_follow_up_same_token: sameTokens(s.followUpRestored.tokenIds, s.followUpCold.tokenIds),
    sequence_save_ms: round(s.sequenceSaveMs, 1),
    sequence_mb: s.sequenceBytes === undefined ? null : round(s.sequenceBytes / 1e6, 1),
    switch_back_ttft_ms: round(s.switchBackShelved.timingsMs.firstTokenMs, 1),
    switch_back_plain_ttft_ms: round(s.switchBackPlain.timingsMs.firstTokenMs, 1),
    switch_back_reused_tokens: s.switchBackShelved.stats!.reusedTokens,
    switch_back_same_token: sameTokens(s.switchBackShelved.tokenIds, s.switchBackPlain.tokenIds),
    refine_prompt_tokens: s.refined.promptTokenIds.length,
    refine_reused_tokens: stats.reusedTokens,
    refine_ttft_ms: round(s.refined.timingsMs.firstTokenMs, 1),
    refine_cold_ttft_ms: round(s.refinedCold.timingsMs.firstTokenMs, 1),
    refine_read_ahead_ttft_ms: round(s.readAhead.timingsMs.firstTokenMs, 1),
    refine_read_ahead_prefilled: s.readAhead.stats!.prefilledTokens,
    refine_plain_tok_s: round(tokS(s.refinedPlain), 2),
    prefill_chunk: options.prefillChunk ?? 'default',
    stop_wait_mean_ms: s.stopWaits.length
      ? round(s.stopWaits.reduce((a, b) => a + b, 0) / s.stopWaits.length, 1)
      : null,
    stop_wait_max_ms: s.stopWaits.length ? round(Math.max(...s.stopWaits), 1) : null,
    stops_measured: s.stopWaits.length,
    refine_spec_tok_s: round(tokS(s.refined), 2),
    spec_decoder_runs: stats.decoderRuns,
    spec_draft_tokens: stats.draftTokens,
    spec_accepted_drafts: stats.acceptedDrafts,
    spec_accepted_per_run: round(
      stats.decoderRuns ? stats.acceptedDrafts / stats.decoderRuns : 0,
      2,
    ),
    spec_same_tokens: sameTokens(s.refined.tokenIds, s.refinedPlain.tokenIds),
  };
  if (options.json) {
    console.log(JSON.stringify(result));
    return;
  }
  const log = console.log;
  log(
    (options.modelDir
      ? `${basename(modelDir)}, ${options.precision} on ${device}`
      : `Qwen3-VL-2B-sized model (random weights), ${options.precision} on ${device}`) +
      (options.graphCapture ? `, graph capture (cache of ${options.graphCapture})` : ''),
  );
  log(`  image ${result.image} -> grid ${s.cold.imageGridThw[0].join('x')}`);
  log(`  prompt tokens        ${result.prompt_tokens}`);
  log(`  preprocess           ${result.preprocess_ms} ms`);
  log(`  vision               ${result.vision_ms} ms`);
  log(`  prefill              ${result.prefill_ms} ms`);
  log(`  time to first token  ${result.ttft_ms} ms`);
  log(
    `    read ahead         ${result.generate_read_ahead_ttft_ms} ms once the image and then its instruction were read ahead (the instruction took ${result.instruction_read_ahead_ms} ms for ${result.instruction_read_ahead_prefilled} tokens)`,
  );
  log(
    `    after a restart    ${result.restart_ttft_ms} ms with the image's vision outputs read from disk in ${result.restart_vision_ms} ms`,
  );
  log(
    `    follow-up, restart ${result.restart_follow_up_ttft_ms} ms going on from the conversation saved at the stop (${result.sequence_mb} MB, saved in ${result.sequence_save_ms} ms), ${result.restart_follow_up_cold_ttft_ms} ms without it (${result.restart_follow_up_prompt_tokens} tokens)`,
  );
  log(
    `    back to it         ${result.switch_back_ttft_ms} ms after another screenshot, its conversation from the shelf; ${result.switch_back_plain_ttft_ms} ms read again`,
  );
  log(
    `  decode               ${result.decode_tok_s} tokens/s over ${s.cold.tokenIds.length} tokens`,
  );
  log(
    `  fastest decode step  ${bestStepMs.toFixed(0)} ms (${result.decode_best_step_tok_s} tokens/s); mean ${result.decode_step_mean_ms} ms, ${(1000 / decodeTokS).toFixed(1)} ms per token with the loop`,
  );
  log(
    `  with speculation     ${result.decode_spec_tok_s} tokens/s (${result.decode_spec_accepted_drafts} drafts accepted in ${result.decode_spec_runs} runs; same tokens: ${result.decode_spec_same_tokens})`,
  );
  log(`  peak RSS             ${result.peak_rss_mb} MB`);
  if (result.stop_wait_mean_ms !== null) {
    log(
      `  Stop during prefill  the engine was free ${result.stop_wait_mean_ms} ms later on average, at most ${result.stop_wait_max_ms} (${result.stops_measured} stops; prompt chunks: ${result.prefill_chunk})`,
    );
  }
  if (bandwidth && rooflineTokS) {
    log(
      `  memory bandwidth     ${result.bandwidth_gb_s} GB/s (memcpy, read + write, all cores); reads alone ${result.read_bandwidth_gb_s} GB/s`,
    );
    log(
      `  read per token       ${(bytesPerToken / 1e9).toFixed(3)} GB (weights ${(bytes.weights / 1e9).toFixed(3)}, KV cache ${(bytes.kvCache / 1e9).toFixed(3)} at ${Math.round(meanCachedRows)} cached rows)`,
    );
    log(
      `  roofline             ${result.roofline_tok_s} tokens/s; achieved ${(result.roofline_ratio! * 100).toFixed(1)}% (fastest step ${(result.roofline_ratio_best_step! * 100).toFixed(1)}%; ${(result.read_roofline_ratio! * 100).toFixed(1)}% of what reads alone allow)`,
    );
  }
  if (kernel) {
    log(
      `  int4 kernel alone    ${result.kernel_tok_s} tokens/s (${kernel.allThreadsMs.toFixed(1)} ms for the step's MatMulNBits: ${result.kernel_gb_s} GB/s${kernel.oneThreadMs ? `; one thread ${result.kernel_gb_s_one_thread} GB/s` : ''}); decode achieves ${(result.kernel_ratio! * 100).toFixed(1)}% of it`,
    );
  }
  log(`Refinement (previous answer in the prompt, ${result.refine_prompt_tokens} tokens)`);
  log(
    `  first token          ${result.refine_ttft_ms} ms reusing ${result.refine_reused_tokens} cached tokens; ${result.refine_cold_ttft_ms} ms cold`,
  );
  log(
    `  decode               ${result.refine_plain_tok_s} tokens/s plain, ${result.refine_spec_tok_s} with speculation`,
  );
  log(
    `  speculation          ${stats.acceptedDrafts}/${stats.draftTokens} drafts accepted in ${stats.decoderRuns} runs (${result.spec_accepted_per_run} per run); same tokens as plain: ${result.spec_same_tokens}`,
  );
  log('  (random weights: draft acceptance reflects this model, not a trained one)');
}

/** Tokens a second after the first, over the decode time. */
function tokS(r: GenerationResult): number {
  return r.tokenIds.length > 1 && r.timingsMs.decodeMs > 0
    ? (r.tokenIds.length - 1) / (r.timingsMs.decodeMs / 1000)
    : 0;
}

function sameTokens(a: number[], b: number[]): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

/**
 * Bytes a decode step reads: every decoder linear layer and the LM head in the build's format
 * (int4: packed nibbles, an fp32 scale and a zero-point nibble per 32 weights; with tied fp32/fp16
 * weights the LM head is the embedding; the embedding gather reads one row, negligible), and the
 * KV cache of `cachedRows` positions (keys and values of every layer, in the CPU build's type).
 */
function decodeBytesPerToken(
  config: Qwen3VLConfig,
  precision: Precision,
  cachedRows: number,
): { weights: number; kvCache: number } {
  const t = config.text;
  const q = t.numHeads * t.headDim;
  const kv = t.numKvHeads * t.headDim;
  const d = t.hiddenSize;
  const linear = t.numLayers * (d * q + 2 * d * kv + q * d + 3 * d * t.intermediateSize);
  const head = t.vocabSize * d;
  const bytesPerWeight =
    precision === 'int4' ? 0.5 + 4 / 32 + 0.5 / 32 : precision === 'fp16' ? 2 : 4;
  return {
    weights: (linear + head) * bytesPerWeight,
    kvCache: t.numLayers * 2 * cachedRows * kvRowBytes(t, kvCacheType(precision, 'cpu')),
  };
}

function round(x: number, digits: number): number {
  return Number(x.toFixed(digits));
}
