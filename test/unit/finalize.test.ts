import { strict as assert } from 'node:assert';
import { DecodeRate } from '../../src/generation/decodeRate';
import { finalizeReply } from '../../src/generation/finalize';

describe('finalizeReply', () => {
  it('extracts and formats HTML', async () => {
    const result = await finalizeReply('Sure!\n```html\n<div><p>Hi</p></div>\n```\nBye', 'html');
    assert.deepEqual(result, { code: '<div><p>Hi</p></div>\n', warnings: [] });
  });

  it('wraps a Draw.io model and reports its problems', async () => {
    const reply =
      '```xml\n<mxGraphModel><root><mxCell id="0"/><mxCell id="0"/></root></mxGraphModel>\n```';
    const result = await finalizeReply(reply, 'drawio');
    assert.match(result.code, /^<mxfile host="design-to-code">/);
    assert.deepEqual(result.warnings, ['Draw.io: cell id "0" is used more than once.']);
  });

  it('says when the token limit cut the reply off, and keeps the code', async () => {
    const reply = '```html\n<div><p>Hi</p></div>';
    const cut = await finalizeReply(reply, 'html', undefined, {
      finishReason: 'length',
      maxTokens: 4096,
    });
    assert.equal(cut.code, '<div><p>Hi</p></div>\n');
    assert.equal(cut.warnings.length, 1);
    assert.match(cut.warnings[0]!, /cut off at the token limit \(4096\).*designToCode\.maxTokens/);
    const stopped = await finalizeReply(reply, 'html', undefined, {
      finishReason: 'stop',
      maxTokens: 4096,
    });
    assert.deepEqual(stopped.warnings, []);
  });

  it('warns when there is no code at all', async () => {
    assert.deepEqual(await finalizeReply('   ', 'react'), {
      code: '',
      warnings: ['The model replied without any code.'],
    });
  });
});

describe('DecodeRate', () => {
  it('times tokens from the first one, leaving out the time to first token', () => {
    let now = 5000;
    const rate = new DecodeRate(() => now);
    assert.equal(rate.update(1), 0);
    now += 500;
    assert.equal(rate.update(11), 20);
    now += 500;
    assert.equal(rate.update(21), 20);
  });
});
