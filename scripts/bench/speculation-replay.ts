/**
 * What prompt-lookup speculation saves on real code, without a model:
 *   tsx scripts/bench/speculation-replay.ts FILE... [--history FILE...] [--tokens N] [--json]
 *
 * Each file stands for an answer a trained model would write token by token (greedy). The
 * engine's own decode loop (draft planner, prompt lookup, verification) runs against a replay
 * decoder whose every row predicts the file's next token, so a draft is kept exactly when it
 * equals what the model writes next. Counting the decoder runs and their sizes, and pricing each
 * with a device's measured run cost (run-cost.ts), gives the decode time with speculation in
 * one-token steps, against the answer's token count without it.
 *
 * Four cases per file, its first --tokens tokens (default 3,000, a screenshot's answer):
 * - first: a first generation. The prompt is the instruction only; the image's pad tokens never
 *   occur in code, so drafts can only come from what the answer has written so far.
 * - first-history: the same, with the engine's earlier answers to draft from as well
 *   (recent-answers.ts): the --history files, else the other files replayed.
 * - refine: the previous answer in the prompt, and the new answer that answer with an edit in
 *   every 500 tokens (8 tokens changed, as "make the header blue" does), so the drafts copy
 *   the previous answer and fail at each edit; refine-dense: an edit every 100 tokens.
 * Variants of the prompt-lookup settings run beside the engine's defaults. The WebGPU curve is
 * measured up to 33-token runs (run-cost.ts).
 *
 * Real pages to replay (MIT; docs/bench/2026-11-26-cpu names the ten measured): `npm pack
 * startbootstrap-agency startbootstrap-freelancer startbootstrap-landing-page
 * startbootstrap-creative startbootstrap-new-age startbootstrap-sb-admin-2 notus-js`
 * (Bootstrap and Tailwind landing pages and dashboards).
 */
import { readFileSync } from 'node:fs';
import { basename, resolve } from 'node:path';
import type { TextDecoder, TopLogits } from '../../server/engine/contracts';
import { runDecodeLoop } from '../../server/engine/generation/decode-loop';
import { seededRandom } from '../../server/engine/generation/prng';
import {
  DEFAULT_PROMPT_LOOKUP,
  type PromptLookupSettings,
} from '../../server/engine/generation/prompt-lookup';
import {
  CPU_RUN_COST,
  WEBGPU_RUN_COST,
  type RunCost,
} from '../../server/engine/generation/run-cost';
import { RecentAnswers } from '../../server/engine/generation/recent-answers';
import { loadTokenizer } from '../../server/engine/tokenizer/text-tokenizer';

/**
 * A decoder standing in for a trained model that writes `answer` after `prompt`, then its end
 * token: each row predicts the answer's next token when the run so far follows the answer.
 * Records the size of every run after prefill.
 */
export class ReplayDecoder implements TextDecoder {
  readonly topLogitsPerRow = 1;
  /** An id no prompt or answer token has. */
  readonly eos: number;
  /** Tokens per decoder run after prefill, in order. */
  readonly runs: number[] = [];
  private ids: number[] = [];

  constructor(
    private readonly prompt: readonly number[],
    private readonly answer: readonly number[],
  ) {
    this.eos = Math.max(0, ...prompt, ...answer) + 1;
  }

  get pastLength(): number {
    return this.ids.length;
  }

  get cachedIds(): readonly number[] {
    return this.ids;
  }

  async prefill({ inputIds }: { inputIds: number[] }): Promise<Float32Array> {
    this.ids = [...inputIds];
    const row = new Float32Array(this.eos + 1).fill(-1);
    row[this.next()] = 0;
    return row;
  }

  async step(): Promise<Float32Array> {
    throw new Error('ReplayDecoder: greedy runs use extendTop');
  }

  async extend(): Promise<Float32Array[]> {
    throw new Error('ReplayDecoder: greedy runs use extendTop');
  }

  async extendTop(tokenIds: number[]): Promise<TopLogits[]> {
    this.runs.push(tokenIds.length);
    return tokenIds.map((id) => {
      this.ids.push(id);
      return { ids: [this.next()], logits: Float32Array.of(0) };
    });
  }

  truncate(length: number): void {
    this.ids.length = Math.min(this.ids.length, length);
  }

  reset(): void {
    this.ids = [];
  }

  /** The token the model writes after the cached ids. */
  private next(): number {
    const written = this.ids.length - this.prompt.length;
    return written < this.answer.length ? this.answer[written] : this.eos;
  }
}

export interface ReplayResult {
  tokens: number;
  /** Tokens per decoder run after prefill. */
  runs: number[];
  acceptedDrafts: number;
}

/**
 * Replays `answer` after `prompt` through the engine's decode loop, greedy, with `references`
 * as the engine's earlier answers.
 */
export async function replay(
  prompt: readonly number[],
  answer: readonly number[],
  settings: PromptLookupSettings | undefined,
  runCost: RunCost,
  references: readonly (readonly number[])[] = [],
): Promise<ReplayResult> {
  const decoder = new ReplayDecoder(prompt, answer);
  const result = await runDecodeLoop({
    decoder,
    prefill: { inputIds: [...prompt], positionIds: [[], [], []] },
    ropeDelta: 0,
    maxNewTokens: answer.length,
    eosTokenIds: [decoder.eos],
    sampler: { greedy: true, temperature: 0, topK: 0, topP: 1, repetitionPenalty: 1 },
    random: seededRandom(1),
    tokenizer: { decode: () => '' },
    speculation: settings,
    lookupReferences: references,
    runCost,
  });
  if (result.tokenIds.join() !== answer.join()) {
    throw new Error('replay: the decode loop did not reproduce the answer');
  }
  return { tokens: answer.length, runs: decoder.runs, acceptedDrafts: result.acceptedDrafts };
}

/**
 * Decode time without speculation over decode time with it, in one-token steps (the first
 * token comes from prefill in both).
 */
export function speedup({ tokens, runs }: ReplayResult, runCost: RunCost): number {
  const cost = runs.reduce((sum, size) => sum + runCost(size), 0);
  return (tokens - 1) / cost;
}

/**
 * `ids` with the tokens in the middle of every block of `every` overwritten by `replacement`
 * (same length: an edit, as a refinement makes, not an insertion).
 */
export function editEvery(
  ids: readonly number[],
  every: number,
  replacement: readonly number[],
): number[] {
  const out: number[] = [];
  for (let start = 0; start < ids.length; start += every) {
    const span = ids.slice(start, start + every);
    const at = Math.floor(span.length / 2);
    out.push(...span.slice(0, at), ...replacement, ...span.slice(at + replacement.length));
  }
  return out;
}

/** The engine's settings and others beside them (2-3: the default before the replay). */
const VARIANTS: Record<string, PromptLookupSettings> = {
  default: DEFAULT_PROMPT_LOOKUP,
  'ngram 2-3': { ...DEFAULT_PROMPT_LOOKUP, maxNgram: 3 },
  'ngram 2-8': { ...DEFAULT_PROMPT_LOOKUP, maxNgram: 8 },
  'ngram 2-64': { ...DEFAULT_PROMPT_LOOKUP, maxNgram: 64 },
  'drafts 32': { ...DEFAULT_PROMPT_LOOKUP, draftTokens: 32 },
};

const DEVICES: Record<string, RunCost> = { cpu: CPU_RUN_COST, webgpu: WEBGPU_RUN_COST };

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  const json = args.includes('--json');
  const tokensAt = args.indexOf('--tokens');
  const limit = tokensAt >= 0 ? Number(args[tokensAt + 1]) : 3000;
  const historyAt = args.includes('--history') ? args.indexOf('--history') : args.length;
  const paths = (from: number, to: number) =>
    args
      .slice(from, to)
      .filter((a, i) => !a.startsWith('--') && (tokensAt < 0 || from + i !== tokensAt + 1));
  const files = paths(0, historyAt);
  const historyFiles = paths(historyAt + 1, args.length);
  if (files.length === 0) throw new Error('give the code files to replay');
  const root = process.env.BENCH_ROOT ?? resolve(__dirname, '../..');
  const tokenizer = loadTokenizer(`${root}/test/fixtures/qwen3vl-tiny/model`);
  const instruction = tokenizer.encode(
    'Write a single HTML file with embedded CSS that reproduces this screenshot.',
  );
  const edit = tokenizer.encode(' style="color: #1d4ed8"');
  const speedups = new Map<string, number[]>();
  const read = (file: string) => tokenizer.encode(readFileSync(file, 'utf8')).slice(0, limit);
  const answers = files.map(read);
  const history = historyFiles.map(read);
  for (const [index, file] of files.entries()) {
    const answer = answers[index];
    // The engine's earlier answers: --history's files, else the other files replayed.
    // held as the engine holds them (its bounds on count and tokens apply).
    const earlier = new RecentAnswers();
    for (const ids of historyFiles.length > 0 ? history : answers.filter((_, i) => i !== index)) {
      earlier.add(ids);
    }
    const refinePrompt = [...instruction, ...answer, ...tokenizer.encode('Make the header blue.')];
    const cases = {
      first: { prompt: instruction, answer, references: [] as readonly (readonly number[])[] },
      'first-history': { prompt: instruction, answer, references: earlier.list },
      refine: { prompt: refinePrompt, answer: editEvery(answer, 500, edit), references: [] },
      'refine-dense': {
        prompt: refinePrompt,
        answer: editEvery(answer, 100, edit),
        references: [],
      },
    };
    for (const [name, settings] of Object.entries(VARIANTS)) {
      for (const [kind, { prompt, answer: target, references }] of Object.entries(cases)) {
        const row: Record<string, unknown> = { file: basename(file), case: kind, variant: name };
        for (const [device, cost] of Object.entries(DEVICES)) {
          const result = await replay(prompt, target, settings, cost, references);
          const rate = speedup(result, cost);
          row[`${device}_speedup`] = +rate.toFixed(2);
          row[`${device}_runs`] = result.runs.length;
          row[`${device}_tokens_per_run`] = +((target.length - 1) / result.runs.length).toFixed(2);
          row[`${device}_drafts_kept`] = result.acceptedDrafts;
          const key = `${kind}\t${name}\t${device}`;
          speedups.set(key, [...(speedups.get(key) ?? []), rate]);
        }
        row.tokens = target.length;
        console.log(json ? JSON.stringify(row) : formatRow(row));
      }
    }
  }
  if (files.length > 1 && !json) {
    console.log(`\nGeometric mean over ${files.length} files [lowest-highest]:`);
    for (const [key, rates] of speedups) {
      const mean = Math.exp(rates.reduce((sum, r) => sum + Math.log(r), 0) / rates.length);
      const [kind, name, device] = key.split('\t');
      console.log(
        `${kind.padEnd(12)} ${name.padEnd(10)} ${device.padEnd(6)} ${mean.toFixed(2)}x ` +
          `[${Math.min(...rates).toFixed(2)}-${Math.max(...rates).toFixed(2)}]`,
      );
    }
  }
}

function formatRow(row: Record<string, unknown>): string {
  return (
    `${String(row.file).padEnd(28)} ${String(row.case).padEnd(12)} ${String(row.variant).padEnd(10)} ` +
    `${row.tokens} tokens  cpu ${row.cpu_speedup}x (${row.cpu_tokens_per_run}/run)  ` +
    `webgpu ${row.webgpu_speedup}x (${row.webgpu_tokens_per_run}/run)`
  );
}

if (require.main === module) {
  main().catch((error) => {
    console.error(error);
    process.exit(1);
  });
}
