/**
 * The tokenizer's piece cache (tokenizer/piece-cache.ts): a conversation tokenized piece by
 * piece between added tokens, earlier pieces looked up, gives exactly the ids of tokenizing it
 * whole with the checkpoint's tokenizer.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Tokenizer } from '@huggingface/tokenizers';
import { PieceCache } from '../../server/engine/tokenizer/piece-cache';
import { loadTokenizer } from '../../server/engine/tokenizer/text-tokenizer';
import { TINY_MODEL_DIR } from './golden-fixture';

const json = JSON.parse(readFileSync(join(TINY_MODEL_DIR, 'tokenizer.json'), 'utf8'));
const config = JSON.parse(readFileSync(join(TINY_MODEL_DIR, 'tokenizer_config.json'), 'utf8'));
const whole = new Tokenizer(json, config);
const reference = (text: string) => whole.encode(text, { add_special_tokens: false }).ids;

/** Deterministic text from pieces that stress the boundaries: added tokens, spaces, marks. */
function randomText(seed: number, length: number): string {
  const parts = [
    '<|im_start|>',
    '<|im_end|>',
    '<|image_pad|>',
    '<|vision_start|>',
    '<|endoftext|>',
    '<|im_start',
    '|>',
    ' ',
    '  ',
    '\n',
    '\r\n',
    '\t',
    'assistant',
    '<div class="row">',
    '</div>',
    'e\u0301',
    '\u0301',
    'é',
    '東京',
    '🙂',
    "'s",
    '123',
    'color:#333;',
    'x',
  ];
  let state = seed;
  let out = '';
  for (let i = 0; i < length; i++) {
    state = (state * 1103515245 + 12345) >>> 0;
    out += parts[state % parts.length];
  }
  return out;
}

describe('tokenizer piece cache', () => {
  it('gives the ids of tokenizing the text whole', () => {
    const tokenizer = loadTokenizer(TINY_MODEL_DIR);
    for (let seed = 1; seed <= 300; seed++) {
      const text = randomText(seed, 1 + (seed % 80));
      assert.deepEqual(tokenizer.encode(text), reference(text), JSON.stringify(text));
      // Again, now from the cache.
      assert.deepEqual(tokenizer.encode(text), reference(text), JSON.stringify(text));
    }
  });

  it('tokenizes only the pieces it has not seen', () => {
    const encoded: string[] = [];
    const cache = PieceCache.create(json.added_tokens, (text) => {
      encoded.push(text);
      return reference(text);
    })!;
    const answer = Array.from({ length: 50 }, (_, i) => `<li class="item-${i}">Item ${i}</li>`);
    const first = `<|im_start|>user\nMake a list of fifty items.<|im_end|>\n<|im_start|>assistant\n${answer.join('\n')}`;
    const ask = 'user\nMake the list blue, and the items bold.';
    const refinement = `${first}<|im_end|>\n<|im_start|>${ask}<|im_end|>\n`;
    assert.deepEqual(cache.encode(first), reference(first));
    encoded.length = 0;
    assert.deepEqual(cache.encode(refinement), reference(refinement));
    // The new message, and short pieces, which are never kept; not the answer.
    assert.deepEqual(
      encoded.filter((text) => text.length >= 32),
      [ask],
    );
  });

  it('keeps a bounded number of characters, the least recently used dropped', () => {
    let calls = 0;
    const cache = PieceCache.create(
      json.added_tokens,
      (text) => {
        calls++;
        return reference(text);
      },
      100,
    )!;
    const piece = (c: string) => c.repeat(40);
    cache.encode(piece('a'));
    cache.encode(piece('b'));
    cache.encode(piece('a')); // a is now the most recent
    cache.encode(piece('c')); // 120 characters: b goes
    calls = 0;
    cache.encode(piece('a'));
    cache.encode(piece('c'));
    assert.equal(calls, 0);
    cache.encode(piece('b'));
    assert.equal(calls, 1);
  });

  it('is not used where an added token is matched other than literally', () => {
    const stripped = [{ id: 1, content: '<x>', lstrip: true }];
    assert.equal(
      PieceCache.create(stripped, () => []),
      undefined,
    );
  });
});
