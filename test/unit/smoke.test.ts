import { strict as assert } from 'node:assert';
import { Tokenizer } from '@huggingface/tokenizers';
import { Template } from '@huggingface/jinja';

describe('toolchain', () => {
  it('loads the ESM-only tokenizer and template libraries from TypeScript tests', () => {
    assert.equal(typeof Tokenizer, 'function');
    assert.equal(typeof Template, 'function');
  });
});
