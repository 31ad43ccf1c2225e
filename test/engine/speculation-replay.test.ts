/**
 * The speculation replay benchmark (scripts/bench/speculation-replay.ts): its replay decoder
 * drives the engine's decode loop to write exactly the given answer, and the run sizes it counts
 * give the speedup the drafts earn.
 */
import { strict as assert } from 'node:assert';
import { CPU_RUN_COST } from '../../server/engine/generation/run-cost';
import {
  DEFAULT_PROMPT_LOOKUP,
  type PromptLookupSettings,
} from '../../server/engine/generation/prompt-lookup';
import { loadTokenizer } from '../../server/engine/tokenizer/text-tokenizer';
import { editEvery, replay, speedup } from '../../scripts/bench/speculation-replay';
import { TINY_MODEL_DIR } from './golden-fixture';

describe('speculation replay', () => {
  const distinct = Array.from({ length: 300 }, (_, i) => 1000 + i);

  it('without recurring n-grams, runs one token at a time', async () => {
    const result = await replay([1, 2, 3], distinct, DEFAULT_PROMPT_LOOKUP, CPU_RUN_COST);
    assert.equal(result.runs.length, distinct.length - 1);
    assert.ok(result.runs.every((size) => size === 1));
    assert.equal(result.acceptedDrafts, 0);
    assert.equal(speedup(result, CPU_RUN_COST), 1);
  });

  it('copying an answer from the prompt keeps every draft, up to the most per run', async () => {
    const result = await replay([5, ...distinct, 6], distinct, DEFAULT_PROMPT_LOOKUP, CPU_RUN_COST);
    const drafted = result.runs.reduce((sum, size) => sum + size - 1, 0);
    assert.equal(result.acceptedDrafts, drafted);
    assert.ok(result.runs.every((size) => size <= DEFAULT_PROMPT_LOOKUP.draftTokens + 1));
    // 299 tokens after the first in runs of up to 17: at most 17 runs of a 3.9-step cost
    assert.ok(result.runs.length <= 20, `${result.runs.length} runs`);
    assert.ok(speedup(result, CPU_RUN_COST) > 3.5);
  });

  it('an edited copy costs more runs than an exact one, and fewer than plain decoding', async () => {
    const edited = editEvery(distinct, 100, [7, 8, 9]);
    const exact = await replay([...distinct], distinct, DEFAULT_PROMPT_LOOKUP, CPU_RUN_COST);
    const result = await replay([...distinct], edited, DEFAULT_PROMPT_LOOKUP, CPU_RUN_COST);
    assert.ok(result.runs.length > exact.runs.length);
    assert.ok(result.runs.length < edited.length / 2);
  });

  it('replaces a span in the middle of every block', () => {
    const edited = editEvery(distinct, 100, [7, 8, 9]);
    assert.equal(edited.length, distinct.length);
    const changed = edited.flatMap((id, i) => (id === distinct[i] ? [] : [i]));
    assert.deepEqual(changed, [50, 51, 52, 150, 151, 152, 250, 251, 252]);
  });
});

describe('prompt lookup on markup', () => {
  // Forty cards alike but for their words: short n-grams recur in every card, so the latest
  // 3-gram match is usually another card than the one being copied.
  const words = ['alpha', 'beta', 'gamma', 'delta', 'omega', 'sigma', 'kappa', 'theta'];
  const page = Array.from(
    { length: 40 },
    (_, k) =>
      `<div class="card"><h3 class="title">${words[k % 8]} ${words[(k * 3) % 8]}</h3>` +
      `<p class="text">${words[(k * 5) % 8]} and ${words[(k + 2) % 8]}</p>` +
      `<a class="btn" href="#${k}">Buy</a></div>\n`,
  ).join('');

  it('matching long n-grams copies a refinement faster than 3-grams did', async () => {
    const tokenizer = loadTokenizer(TINY_MODEL_DIR);
    const answer = tokenizer.encode(page);
    const edited = editEvery(answer, 300, tokenizer.encode(' id="x"'));
    const prompt = [...answer, ...tokenizer.encode('Make the header blue.')];
    const rate = async (settings: PromptLookupSettings) =>
      speedup(await replay(prompt, edited, settings, CPU_RUN_COST), CPU_RUN_COST);
    const short = await rate({ ...DEFAULT_PROMPT_LOOKUP, maxNgram: 3 });
    const long = await rate(DEFAULT_PROMPT_LOOKUP);
    assert.ok(long > short * 1.2, `default ${long.toFixed(2)}x vs 3-grams ${short.toFixed(2)}x`);
  });
});
