import { strict as assert } from 'node:assert';
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

  it('warns when there is no code at all', async () => {
    assert.deepEqual(await finalizeReply('   ', 'react'), {
      code: '',
      warnings: ['The model replied without any code.'],
    });
  });
});
