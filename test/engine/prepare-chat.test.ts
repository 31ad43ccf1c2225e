import { strict as assert } from 'node:assert';
import { loadChatCheckpoint, type ChatCheckpoint } from '../../server/engine/chat/chat-checkpoint';
import { ImageLayouts } from '../../server/engine/chat/image-layouts';
import { prepareChat } from '../../server/engine/chat/prepare-chat';
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
