/**
 * The conversation a refinement continues (src/generation/conversation.ts): the kept one, word
 * for word, while the code is the model's; the code as it stands once edited, for records kept
 * before conversations were, or past the length limit.
 */
import { strict as assert } from 'node:assert';
import {
  CONVERSATION_LIMIT,
  conversationToRefine,
  modelTurn,
} from '../../src/generation/conversation';
import { codeAsReply, type Conversation } from '../../src/generation/prompts';

const REPLY = 'Here it is.\n```html\n<p>a</p>\n```';
const CODE = '<p>a</p>\n';

describe('the conversation a refinement continues', () => {
  const kept: Conversation = {
    instruction: 'dark theme',
    turns: [{ role: 'assistant', content: REPLY }],
  };

  it("keeps the model's reply word for word, or the code where the reply was cut short", () => {
    assert.deepEqual(modelTurn({ reply: REPLY, code: CODE, complete: true }, 'html'), {
      role: 'assistant',
      content: REPLY,
    });
    assert.deepEqual(
      modelTurn({ reply: '```html\n<p>a', code: CODE, complete: false }, 'html'),
      codeAsReply(CODE, 'html'),
    );
  });

  it('continues the kept conversation while the code is the one it produced', () => {
    assert.equal(conversationToRefine(kept, CODE, CODE, 'html', 'ignored'), kept);
  });

  it('starts again from the code as it stands once the user edited it', () => {
    const edited = '<p>b</p>\n';
    assert.deepEqual(conversationToRefine(kept, CODE, edited, 'html', 'ignored'), {
      instruction: 'dark theme',
      turns: [codeAsReply(edited, 'html')],
    });
  });

  it('takes the first instruction given for records kept before conversations were', () => {
    assert.deepEqual(conversationToRefine(undefined, CODE, CODE, 'jsx', 'dark theme'), {
      instruction: 'dark theme',
      turns: [codeAsReply(CODE, 'jsx')],
    });
  });

  it(`starts again from the code past ${CONVERSATION_LIMIT} characters of turns`, () => {
    const long: Conversation = {
      instruction: '',
      turns: [
        { role: 'assistant', content: 'x'.repeat(CONVERSATION_LIMIT / 2) },
        { role: 'user', content: 'y'.repeat(CONVERSATION_LIMIT / 2) },
        { role: 'assistant', content: REPLY },
      ],
    };
    assert.deepEqual(conversationToRefine(long, CODE, CODE, 'html', '').turns, [
      codeAsReply(CODE, 'html'),
    ]);
    const fits = { ...long, turns: long.turns.slice(1) };
    assert.equal(conversationToRefine(fits, CODE, CODE, 'html', ''), fits);
  });
});
