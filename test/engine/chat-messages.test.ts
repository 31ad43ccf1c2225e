import { strict as assert } from 'node:assert';
import { tokenizePrompt } from '../../server/engine/chat/build-prompt';
import { splitMessages } from '../../server/engine/chat/messages';
import type { ChatMessage } from '../../server/engine/contracts';
import { isEngineError } from '../../server/engine/errors';
import { loadTokenizer, type TextTokenizer } from '../../server/engine/tokenizer/text-tokenizer';
import { TINY_MODEL_DIR } from './golden-fixture';

describe('chat messages and image pad expansion', () => {
  let tokenizer: TextTokenizer;
  before(() => {
    tokenizer = loadTokenizer(TINY_MODEL_DIR);
  });

  it('keeps image placeholders for the template and the bytes in order', () => {
    const a = new Uint8Array([1]);
    const b = new Uint8Array([2]);
    const { templateMessages, images } = splitMessages([
      { role: 'system', content: 'sys' },
      {
        role: 'user',
        content: [
          { type: 'image', image: a },
          { type: 'text', text: 'x' },
          { type: 'image', image: b },
        ],
      },
    ]);
    assert.deepEqual(images, [a, b]);
    assert.deepEqual(templateMessages[1].content, [
      { type: 'image' },
      { type: 'text', text: 'x' },
      { type: 'image' },
    ]);
  });

  it('refuses empty chats, unknown roles and malformed parts', () => {
    const bad = (messages: unknown, pattern: RegExp) =>
      assert.throws(
        () => splitMessages(messages as ChatMessage[]),
        (e) => isEngineError(e, 'bad_request') && pattern.test(e.message),
      );
    bad([], /non-empty/);
    bad([{ role: 'tool', content: 'x' }], /messages\[0\]\.role/);
    bad([{ role: 'user', content: [{ type: 'image', image: 'base64...' }] }], /content\[0\]/);
    bad([{ role: 'user', content: 42 }], /string or a list of parts/);
  });

  it('expands each <|image_pad|> to its image token count', () => {
    const { inputIds } = tokenizePrompt('a<|image_pad|>b<|image_pad|>', [2, 3], tokenizer, 151655);
    const pad = 151655;
    assert.deepEqual(inputIds, [64, pad, pad, 65, pad, pad, pad]);
  });

  it('refuses text that smuggles in an extra <|image_pad|>', () => {
    assert.throws(
      () => tokenizePrompt('<|image_pad|> and <|image_pad|>', [4], tokenizer, 151655),
      (e) =>
        isEngineError(e, 'bad_request') &&
        /2 <\|image_pad\|> placeholders for 1 images/.test(e.message),
    );
  });
});
