import { strict as assert } from 'node:assert';
import { loadChatCheckpoint, type ChatCheckpoint } from '../../server/engine/chat/chat-checkpoint';
import { ImageLayouts } from '../../server/engine/chat/image-layouts';
import { prepareChat, warmNextTurn } from '../../server/engine/chat/prepare-chat';
import type { ChatMessage } from '../../server/engine/contracts';
import { goldenCases, goldenMessages, TINY_MODEL_DIR } from './golden-fixture';
import { goldenPixels } from './golden-tensors';

describe('host-side chat preparation against the transformers golden', () => {
  let checkpoint: ChatCheckpoint;
  before(() => {
    checkpoint = loadChatCheckpoint(TINY_MODEL_DIR);
  });

  for (const golden of goldenCases()) {
    describe(golden.name, () => {
      it('renders the same prompt, input ids and MRoPE positions', async () => {
        const prepared = await prepareChat(goldenMessages(golden), checkpoint);
        assert.equal(prepared.prompt, golden.prompt);
        assert.deepEqual(prepared.inputIds, golden.input_ids);
        assert.deepEqual(prepared.positionIds, golden.position_ids);
        assert.equal(prepared.ropeDelta, golden.rope_deltas[0][0]);
        assert.deepEqual(
          prepared.images.map((image) => image.gridThw),
          golden.image_grid_thw ?? [],
        );
      });

      if (golden.image_grid_thw?.length) {
        it('lays out an image seen before from its remembered layout, without its pixels', async () => {
          const layouts = new ImageLayouts();
          const first = await prepareChat(goldenMessages(golden), checkpoint, undefined, layouts);
          const again = await prepareChat(goldenMessages(golden), checkpoint, undefined, layouts);
          assert.ok(first.images.every((image) => image.pixelValues));
          assert.ok(again.images.every((image) => image.pixelValues === undefined));
          assert.deepEqual(again.inputIds, golden.input_ids);
          assert.deepEqual(again.positionIds, golden.position_ids);
          assert.deepEqual(
            again.images.map((image) => image.gridThw),
            golden.image_grid_thw,
          );
        });
      }

      if (golden.pixel_values) {
        it("produces bit-identical pixel_values (one frame of the reference's two)", async () => {
          const prepared = await prepareChat(goldenMessages(golden), checkpoint);
          const expected = goldenPixels(golden);
          const actual = prepared.images[0].pixelValues!;
          assert.equal(actual.length, expected.length);
          let maxAbs = 0;
          for (let i = 0; i < expected.length; i++) {
            maxAbs = Math.max(maxAbs, Math.abs(actual[i] - expected[i]));
          }
          // Resized images included: the uint8 fixed-point bicubic matches PyTorch's exactly.
          assert.equal(maxAbs, 0, `max abs difference ${maxAbs}`);
        });
      }
    });
  }
});

describe('a follow-up turn tokenized ahead (warmNextTurn)', () => {
  it('tokenizes every piece of the next turn but its new message, the answer included', async () => {
    const checkpoint = loadChatCheckpoint(TINY_MODEL_DIR);
    const seen: string[] = [];
    const encode = checkpoint.tokenizer.encode;
    const tokenizer = {
      ...checkpoint.tokenizer,
      encode: (text: string) => (seen.push(text), encode(text)),
    };
    const watched = { ...checkpoint, tokenizer };
    const first: ChatMessage[] = [
      { role: 'system', content: 'You write HTML.' },
      { role: 'user', content: 'A list of fifty items, please.' },
    ];
    const answer = Array.from({ length: 50 }, (_, i) => `<li>Item ${i}</li>`).join('\n');
    warmNextTurn(first, answer, watched);
    assert.equal(seen.length, 1);
    const next = await prepareChat(
      [
        ...first,
        { role: 'assistant', content: answer },
        { role: 'user', content: 'Make it blue.' },
      ],
      checkpoint,
    );
    // Pieces between added tokens (`<|...|>`), as the tokenizer's piece cache keeps them.
    const pieces = (text: string) => text.split(/<\|[a-z_]+\|>/).filter((p) => p.length >= 32);
    const warmed = new Set(pieces(seen[0]));
    const missing = pieces(next.prompt).filter((piece) => !warmed.has(piece));
    assert.ok(pieces(next.prompt).some((piece) => piece.includes(answer)));
    assert.deepEqual(missing, []);
  });

  it('does nothing for an empty answer and never throws', () => {
    const checkpoint = loadChatCheckpoint(TINY_MODEL_DIR);
    let calls = 0;
    const watched = {
      ...checkpoint,
      tokenizer: { ...checkpoint.tokenizer, encode: () => (calls++, []) },
    };
    warmNextTurn([{ role: 'user', content: 'hi' }], '', watched);
    assert.equal(calls, 0);
    assert.doesNotThrow(() => warmNextTurn([] as ChatMessage[], 'answer', watched));
  });
});
