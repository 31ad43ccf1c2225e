/**
 * Which prompts the extension reads ahead, and when (src/generation/readAheadQueue.ts): one in
 * flight, the newest waiting behind it; another image stops the one in flight, a real request
 * drops what waits.
 */
import { strict as assert } from 'node:assert';
import { imageKey, ReadAheadQueue } from '../../src/generation/readAheadQueue';
import type { ChatMessage } from '../../src/openai/types';

/** The server's side: every prompt sent, each answered when the test says so (or aborted). */
class FakeServer {
  readonly calls: { text: string; signal: AbortSignal; finish: () => void }[] = [];
  readonly send = (messages: ChatMessage[], signal: AbortSignal) =>
    new Promise<void>((resolve, reject) => {
      signal.addEventListener('abort', () => reject(new Error('aborted')));
      this.calls.push({ text: messages[0].content as string, signal, finish: resolve });
    });
  get sent(): string[] {
    return this.calls.map((call) => call.text);
  }
}

const prompt = (text: string): ChatMessage[] => [{ role: 'user', content: text }];
const settled = () => new Promise((resolve) => setImmediate(resolve));

describe('the read-ahead queue', () => {
  it('lets a read-ahead of the same image finish, then sends only the newest prompt waiting', async () => {
    const server = new FakeServer();
    const queue = new ReadAheadQueue(server.send);
    const first = queue.request('a', prompt('image'));
    const dropped = queue.request('a', prompt('image + "dar"'));
    const newest = queue.request('a', prompt('image + "dark theme"'));
    assert.equal(await dropped, false, 'replaced before it was sent');
    assert.deepEqual(server.sent, ['image']);
    assert.equal(server.calls[0].signal.aborted, false);
    server.calls[0].finish();
    assert.equal(await first, true);
    await settled();
    assert.deepEqual(server.sent, ['image', 'image + "dark theme"']);
    server.calls[1].finish();
    assert.equal(await newest, true);
  });

  it('stops a read-ahead of another image and sends the new one once it has ended', async () => {
    const server = new FakeServer();
    const queue = new ReadAheadQueue(server.send);
    const first = queue.request('a', prompt('image a'));
    const second = queue.request('b', prompt('image b'));
    assert.equal(server.calls[0].signal.aborted, true);
    assert.equal(await first, false, 'an aborted read-ahead resolves all the same');
    await settled();
    assert.deepEqual(server.sent, ['image a', 'image b']);
    server.calls[1].finish();
    assert.equal(await second, true);
  });

  it('a request starting drops what waits, and stops only a read-ahead of another image', async () => {
    const server = new FakeServer();
    const queue = new ReadAheadQueue(server.send);
    assert.equal(queue.busy, false);
    void queue.request('a', prompt('image a'));
    assert.equal(queue.busy, true);
    const waiting = queue.request('a', prompt('image a + instruction'));
    queue.settle('a');
    assert.equal(await waiting, false);
    assert.equal(server.calls[0].signal.aborted, false, 'the request will extend it');
    queue.settle('b');
    assert.equal(server.calls[0].signal.aborted, true, 'the request would only wait for it');
    await settled();
    assert.deepEqual(server.sent, ['image a']);
  });

  it('goes on after a read-ahead fails, and stops everything when disposed', async () => {
    let failures = 1;
    const server = new FakeServer();
    const queue = new ReadAheadQueue((messages, signal) =>
      failures-- > 0 ? Promise.reject(new Error('server gone')) : server.send(messages, signal),
    );
    assert.equal(await queue.request('a', prompt('fails')), false);
    const next = queue.request('a', prompt('works'));
    assert.deepEqual(server.sent, ['works']);
    queue.dispose();
    assert.equal(server.calls[0].signal.aborted, true);
    assert.equal(await next, false);
  });

  it("tells each prompt's own listener how far the server has read it", async () => {
    const progress: string[] = [];
    const queue = new ReadAheadQueue(async (messages, _signal, onProgress) => {
      onProgress?.({ stage: 'image', done: 1, total: 2 });
      onProgress?.({ stage: 'prompt', done: 4, total: 4 });
    });
    const listener = (name: string) => (p: { stage: string; done: number; total: number }) =>
      progress.push(`${name} ${p.stage} ${p.done}/${p.total}`);
    assert.equal(await queue.request('a', prompt('image'), listener('first')), true);
    assert.equal(await queue.request('b', prompt('other')), true);
    assert.deepEqual(progress, ['first image 1/2', 'first prompt 4/4']);
  });

  it('keys images by their bytes', () => {
    assert.equal(imageKey(new Uint8Array([1, 2, 3])), imageKey(Uint8Array.from([1, 2, 3])));
    assert.notEqual(imageKey(new Uint8Array([1, 2, 3])), imageKey(new Uint8Array([1, 2, 4])));
  });
});
