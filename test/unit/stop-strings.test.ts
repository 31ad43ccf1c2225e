import { strict as assert } from 'node:assert';
import { StopStringMatcher } from '../../server/engine/generation/stop-strings';

function feed(stops: string[], deltas: string[]) {
  const matcher = new StopStringMatcher(stops);
  let out = '';
  for (const delta of deltas) {
    const { text, stopped } = matcher.push(delta);
    out += text;
    if (stopped) return { out, stopped: true };
  }
  return { out: out + matcher.flush(), stopped: false };
}

describe('stop strings', () => {
  it('passes text through when there are none', () => {
    assert.deepEqual(feed([], ['a', 'b']), { out: 'ab', stopped: false });
  });

  it('stops at a stop string split across deltas and drops it', () => {
    assert.deepEqual(feed(['</html>'], ['<p>x</p></', 'ht', 'ml> more']), {
      out: '<p>x</p>',
      stopped: true,
    });
  });

  it('holds back a possible start of a stop string, then releases it', () => {
    const matcher = new StopStringMatcher(['END']);
    assert.deepEqual(matcher.push('abcE'), { text: 'abc', stopped: false });
    assert.deepEqual(matcher.push('N'), { text: '', stopped: false });
    assert.deepEqual(matcher.push('x'), { text: 'ENx', stopped: false });
  });

  it('stops at the earliest of several stop strings', () => {
    assert.deepEqual(feed(['bb', 'a'], ['xxbba']), { out: 'xx', stopped: true });
  });
});
