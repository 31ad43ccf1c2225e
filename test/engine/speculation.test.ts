/**
 * Prompt-lookup speculative decoding: drafting, the acceptance rule (its output distribution is
 * exactly the model's), and the engine's speculative greedy output being token for token the
 * plain greedy output, on the golden cases and on long runs where drafts are accepted.
 */
import { strict as assert } from 'node:assert';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadChatCheckpoint } from '../../server/engine/chat/chat-checkpoint';
import { prepareChat } from '../../server/engine/chat/prepare-chat';
import type {
  ChatMessage,
  Engine,
  GenerateRequest,
  LoadedModel,
} from '../../server/engine/contracts';
import { loadEngine } from '../../server/engine/engine';
import { seededRandom } from '../../server/engine/generation/prng';
import { DEFAULT_PROMPT_LOOKUP, draftTokens } from '../../server/engine/generation/prompt-lookup';
import type { SamplerSettings } from '../../server/engine/generation/sampling';
import { distribution, verifyDraft } from '../../server/engine/generation/speculative-accept';
import { loadModel } from '../../server/engine/runtime/load-model';
import { goldenCases, goldenMessages, TINY_MODEL_DIR } from './golden-fixture';
import { requireWebGpu } from './support/webgpu';

describe('prompt lookup drafts', () => {
  const settings = { maxNgram: 3, minNgram: 2, draftTokens: 4 };

  it('copies what followed the latest earlier match of the last n-gram', () => {
    //              0  1  2  3  4  5  6  7  8  9
    const tokens = [1, 2, 3, 4, 5, 9, 2, 3, 7, 1, 2, 3];
    // last 3-gram [1,2,3] occurs at 0 -> drafts 4,5,9,2
    assert.deepEqual(draftTokens(tokens, settings), [4, 5, 9, 2]);
    // the budget caps the drafts
    assert.deepEqual(draftTokens(tokens, settings, 2), [4, 5]);
    assert.deepEqual(draftTokens(tokens, settings, 0), []);
  });

  it('falls back to a shorter n-gram, takes the latest match, and drafts nothing without one', () => {
    // [8,2,3]: no 3-gram match; 2-gram [2,3] latest at 6 -> 7, 8
    assert.deepEqual(draftTokens([2, 3, 4, 5, 6, 6, 2, 3, 7, 8, 2, 3], settings), [7, 8, 2, 3]);
    assert.deepEqual(draftTokens([1, 2, 3, 4, 5], settings), []);
    assert.deepEqual(draftTokens([5], settings), []);
  });

  it('prefers the longest match to a later shorter one', () => {
    // suffix [1,2,3]: the 2-gram [2,3] last occurs at 5-6 (-> 8), the whole 3-gram at 0-2 (-> 9)
    assert.deepEqual(draftTokens([1, 2, 3, 9, 5, 2, 3, 8, 1, 2, 3], settings), [9, 5, 2, 3]);
    // matches count up to maxNgram only: with 2, both are 2-grams and the later one wins
    const twoGrams = { ...settings, maxNgram: 2 };
    assert.deepEqual(draftTokens([1, 2, 3, 9, 5, 2, 3, 8, 1, 2, 3], twoGrams), [8, 1, 2, 3]);
  });

  it('continues a repeating pattern past the end of the sequence', () => {
    assert.deepEqual(draftTokens([9, 7, 7, 7], settings), [7, 7, 7, 7]);
    // period 3: [4,5,6,4,5] -> the 2-gram [4,5] at 0 -> 6, then 4, 5, 6 read from the drafts
    assert.deepEqual(draftTokens([4, 5, 6, 4, 5], settings), [6, 4, 5, 6]);
  });
});

describe('speculative acceptance rule', () => {
  const logits = Float32Array.from([2.0, 1.0, 0.5, -1.0, 0.0, -3.0]);
  const cases: [string, SamplerSettings][] = [
    ['full softmax', { greedy: false, temperature: 0.8, topK: 0, topP: 1, repetitionPenalty: 1 }],
    [
      'top-k 4, top-p 0.9',
      { greedy: false, temperature: 1, topK: 4, topP: 0.9, repetitionPenalty: 1 },
    ],
  ];
  for (const [name, settings] of cases) {
    for (const draft of [0, 2, 5]) {
      it(`${name}: draft ${draft} -> output distributed as p (200k seeded draws)`, () => {
        const { ids, probs } = distribution(logits, settings);
        const p = new Map(ids.map((id, i) => [id, probs[i]]));
        const random = seededRandom(1234 + draft);
        const n = 200_000;
        const counts = new Map<number, number>();
        let acceptedCount = 0;
        for (let i = 0; i < n; i++) {
          const verdict = verifyDraft(logits, draft, settings, random);
          const token = verdict.accepted ? draft : verdict.token;
          if (verdict.accepted) acceptedCount++;
          else assert.notEqual(verdict.token, draft, 'a rejection never yields the draft');
          counts.set(token, (counts.get(token) ?? 0) + 1);
        }
        for (const token of counts.keys()) assert.ok(p.has(token), `token ${token} outside p`);
        for (const [token, prob] of p) {
          const freq = (counts.get(token) ?? 0) / n;
          const sigma = Math.sqrt((prob * (1 - prob)) / n);
          assert.ok(
            Math.abs(freq - prob) <= 5 * sigma + 1e-9,
            `token ${token}: frequency ${freq.toFixed(4)} vs p ${prob.toFixed(4)}`,
          );
        }
        const pDraft = p.get(draft) ?? 0;
        const acceptRate = acceptedCount / n;
        assert.ok(
          Math.abs(acceptRate - pDraft) <= 5 * Math.sqrt((pDraft * (1 - pDraft)) / n) + 1e-9,
        );
      });
    }
  }

  it('greedy accepts exactly the argmax and otherwise names it', () => {
    const greedy: SamplerSettings = {
      greedy: true,
      temperature: 1,
      topK: 0,
      topP: 1,
      repetitionPenalty: 1,
    };
    const random = seededRandom(1);
    assert.deepEqual(verifyDraft(logits, 0, greedy, random), { accepted: true });
    assert.deepEqual(verifyDraft(logits, 3, greedy, random), { accepted: false, token: 0 });
  });
});

/** A reference logit gap below which another float rounding may pick the other token. */
const NEAR_TIE = 0.01;

for (const device of ['cpu', 'webgpu'] as const) {
  describe(`speculative decoding in the engine (tiny checkpoint, ${device})`, function () {
    this.timeout(120_000);
    let cacheDir: string;
    let engine: Engine;
    before(async function () {
      if (device === 'webgpu') await requireWebGpu(this);
      cacheDir = mkdtempSync(join(tmpdir(), 'd2c-speculation-'));
      engine = await loadEngine({
        modelDir: TINY_MODEL_DIR,
        cacheDir,
        device,
        precision: 'fp32',
      });
    });
    let scorer: LoadedModel | undefined;
    after(async () => {
      await engine?.dispose();
      await scorer?.dispose();
      rmSync(cacheDir, { recursive: true, force: true });
    });

    const run = (request: GenerateRequest, speculation: boolean) =>
      engine.generate({ ...request, speculation });

    /** The logits plain greedy steps give after the prompt and `tokens[0..at)`. */
    async function plainLogitsAt(messages: ChatMessage[], tokens: number[], at: number) {
      scorer ??= await loadModel(TINY_MODEL_DIR, { cacheDir, precision: 'fp32', device });
      const chat = await prepareChat(messages, loadChatCheckpoint(TINY_MODEL_DIR));
      const image = chat.images[0];
      const visual = image && (await scorer.vision.encode(image.pixelValues!, image.gridThw));
      const { decoder } = scorer;
      let logits = await decoder.prefill({
        inputIds: chat.inputIds,
        positionIds: chat.positionIds,
        visual,
      });
      for (let i = 0; i < at; i++) {
        logits = await decoder.step(tokens[i], decoder.pastLength + chat.ropeDelta);
      }
      return logits;
    }

    /**
     * `actual` (drafted and verified) is the plain greedy answer `expected`: on the CPU token for
     * token. On WebGPU a verification run's batched kernels round differently from a step's, so
     * at a near tie the two may part: up to there the tokens must be equal, and there the plain
     * steps' own logits must hold both tokens within NEAR_TIE.
     */
    async function assertGreedy(actual: number[], expected: number[], messages: ChatMessage[]) {
      const at = expected.findIndex((token, i) => actual[i] !== token);
      if (device === 'cpu' || at < 0) {
        assert.deepEqual(actual, expected);
        return;
      }
      const logits = await plainLogitsAt(messages, expected, at);
      const gap = Math.abs(logits[expected[at]] - logits[actual[at]]);
      console.log(
        `      parted from plain greedy at token ${at} of ${expected.length}: logits ${gap.toExponential(2)} apart`,
      );
      assert.ok(gap < NEAR_TIE, `token ${at}: ${actual[at]} for ${expected[at]}, ${gap} apart`);
    }

    for (const golden of goldenCases()) {
      it(`${golden.name}: speculative greedy = plain greedy = the reference, over 24 and 96 tokens`, async () => {
        const short = {
          messages: goldenMessages(golden),
          maxNewTokens: 24,
          sampling: { greedy: true },
        };
        const fast = await run(short, true);
        if (device === 'cpu') {
          assert.deepEqual(fast.tokenIds, golden.greedy_new_tokens);
          assert.equal(fast.text, golden.greedy_text);
        } else {
          // WebGPU rounds differently from the float32 reference (batched verification runs
          // included), so a near tie may go either way (small_image's step 6 is 0.004 apart);
          // up to the first one the tokens must be the reference's.
          const ties = golden.greedy_top2_margins.findIndex((m) => m < NEAR_TIE);
          const agreed = ties < 0 ? golden.greedy_new_tokens.length : ties;
          assert.deepEqual(
            fast.tokenIds.slice(0, agreed),
            golden.greedy_new_tokens.slice(0, agreed),
          );
        }

        const long = { ...short, maxNewTokens: 96 };
        const plain = await run(long, false);
        const spec = await run(long, true);
        await assertGreedy(spec.tokenIds, plain.tokenIds, long.messages);
        if (device === 'cpu') assert.equal(spec.text, plain.text);
        assert.equal(plain.stats!.draftTokens, 0);
        console.log(
          `      ${golden.name}: ${spec.tokenIds.length} tokens in ${spec.stats!.decoderRuns} runs (plain ${plain.stats!.decoderRuns}); drafts ${spec.stats!.acceptedDrafts}/${spec.stats!.draftTokens} accepted`,
        );
      });
    }

    it('accepts drafts on a prompt that repeats itself, and still matches plain greedy', async () => {
      const block = 'div.card { color: red; margin: 4px; } ';
      const request = {
        messages: [
          { role: 'user' as const, content: `Repeat this CSS forever: ${block.repeat(12)}` },
        ],
        maxNewTokens: 128,
        sampling: { greedy: true },
      };
      const plain = await run(request, false);
      const spec = await run(request, true);
      await assertGreedy(spec.tokenIds, plain.tokenIds, request.messages);
      const stats = spec.stats!;
      console.log(
        `      repetitive: ${spec.tokenIds.length} tokens in ${stats.decoderRuns} runs (plain ${plain.stats!.decoderRuns}); drafts ${stats.acceptedDrafts}/${stats.draftTokens} accepted`,
      );
      assert.ok(stats.acceptedDrafts > 0, 'no draft was accepted');
      assert.ok(stats.decoderRuns < plain.stats!.decoderRuns, 'speculation saved no decoder run');
    });

    it('drafts from its earlier answers: asked again, it copies its last answer', async () => {
      // A fresh engine, so that no earlier answer but its own first one is there to copy.
      const fresh = await loadEngine({
        modelDir: TINY_MODEL_DIR,
        cacheDir,
        device,
        precision: 'fp32',
      });
      const runs = { first: 0, again: 0 };
      try {
        for (const golden of goldenCases()) {
          const request = {
            messages: goldenMessages(golden),
            maxNewTokens: 96,
            sampling: { greedy: true },
          };
          const first = await fresh.generate(request);
          const again = await fresh.generate(request);
          // Both speculative, with other drafts: compared as the plain answer would be.
          await assertGreedy(again.tokenIds, first.tokenIds, request.messages);
          const [a, b] = [first.stats!, again.stats!];
          runs.first += a.decoderRuns;
          runs.again += b.decoderRuns;
          console.log(
            `      ${golden.name} asked again: ${b.decoderRuns} runs, ${b.acceptedDrafts}/${b.draftTokens} drafts kept (first time ${a.decoderRuns} runs, ${a.acceptedDrafts}/${a.draftTokens})`,
          );
        }
      } finally {
        await fresh.dispose();
      }
      // The tiny model's answers loop, which their own sequence drafts already; what the
      // earlier answer adds is mostly their openings, before anything repeats.
      assert.ok(runs.again < runs.first, `${runs.again} runs asked again, ${runs.first} first`);
    });

    it('samples with a seed reproducibly, never past max tokens, with speculation on', async () => {
      const request = {
        messages: goldenMessages(goldenCases().find((c) => c.name === 'text_only')!),
        maxNewTokens: 40,
        sampling: { temperature: 0.7, topP: 0.9, topK: 20, seed: 7 },
      };
      const a = await run(request, true);
      const b = await run(request, true);
      assert.deepEqual(a.tokenIds, b.tokenIds);
      assert.ok(a.tokenIds.length <= 40);
    });

    it('uses the default prompt-lookup settings', () => {
      assert.ok(
        DEFAULT_PROMPT_LOOKUP.draftTokens > 0 &&
          DEFAULT_PROMPT_LOOKUP.maxNgram >= DEFAULT_PROMPT_LOOKUP.minNgram,
      );
    });
  });
}
