import { strict as assert } from 'node:assert';
import { TextStreamer } from '../../server/engine/generation/stream-text';
import { loadTokenizer, type TextTokenizer } from '../../server/engine/tokenizer/text-tokenizer';
import { TINY_MODEL_DIR } from './golden-fixture';

describe('streaming detokenizer with the real Qwen tokenizer', () => {
  let tokenizer: TextTokenizer;
  before(() => {
    tokenizer = loadTokenizer(TINY_MODEL_DIR);
  });

  const stream = (ids: number[]) => {
    const streamer = new TextStreamer(tokenizer);
    const deltas = ids.map((id) => streamer.push(id));
    deltas.push(streamer.flush());
    return deltas;
  };

  for (const text of [
    '🫠 melt',
    '龘鬱 中文 mixed',
    '👩‍💻 codes 𓀀 and 🦜!',
    '<div class="a">é</div>',
  ]) {
    it(`never splits a character: ${text}`, () => {
      const ids = tokenizer.encode(text);
      const deltas = stream(ids);
      assert.equal(deltas.join(''), text);
      for (const delta of deltas) {
        assert.ok(!delta.includes('\uFFFD'), `delta ${JSON.stringify(delta)} has U+FFFD`);
        assert.ok(!/[\uD800-\uDBFF]$/.test(delta), 'delta ends in a lone high surrogate');
      }
    });
  }

  it('holds back a multi-token character until its last byte arrives', () => {
    const ids = tokenizer.encode('🫠');
    assert.ok(ids.length >= 2, 'the emoji spans several tokens');
    const deltas = stream(ids);
    assert.deepEqual(deltas.slice(0, ids.length - 1), new Array(ids.length - 1).fill(''));
    assert.equal(deltas[ids.length - 1], '🫠');
  });

  it('shows an incomplete character at the very end as U+FFFD on flush', () => {
    const ids = tokenizer.encode('ok🫠');
    const streamer = new TextStreamer(tokenizer);
    let out = '';
    for (const id of ids.slice(0, -1)) out += streamer.push(id);
    assert.equal(out, 'ok');
    assert.match(streamer.flush(), /^\uFFFD+$/);
  });
});
