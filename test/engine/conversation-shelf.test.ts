/**
 * Conversations kept on disk (conversation-shelf.ts): the file format, taken off once, files not
 * whole refused, the bound and the disk's free space; the CPU cache's rows handed over and taken
 * back; and in the engine, going back to a conversation (after another image, after a restart)
 * with exactly the tokens the cache would have given.
 */
import { strict as assert } from 'node:assert';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  rmSync,
  statSync,
  utimesSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TextConfig } from '../../server/engine/checkpoint/config';
import { loadChatCheckpoint } from '../../server/engine/chat/chat-checkpoint';
import type { ChatMessage, Engine, GenerateRequest, KvRows } from '../../server/engine/contracts';
import { createChatEngine } from '../../server/engine/generation/chat-engine';
import {
  ConversationShelf,
  type StoredSequence,
} from '../../server/engine/generation/conversation-shelf';
import { diskFreeBytes, KEEP_FREE_BYTES } from '../../server/engine/generation/disk-space';
import { DECODER_OUTPUTS } from '../../server/engine/onnx/decoder-graph';
import { HostKvCache } from '../../server/engine/runtime/kv-cache';
import { loadModel } from '../../server/engine/runtime/load-model';
import { TINY_IMAGES_DIR, TINY_MODEL_DIR } from './golden-fixture';

const conversation = (seed = 1, type: KvRows['type'] = 'float32'): StoredSequence => {
  const values = (n: number) =>
    type === 'float16'
      ? Uint16Array.from({ length: 6 }, (_, i) => n * 100 + i)
      : Float32Array.from({ length: 6 }, (_, i) => Math.sin(n + i));
  return {
    ids: [5, 99, 99, 7, seed],
    imageKeys: ['abc@1x2x2'],
    rows: { form: 'test-form', type, arrays: [values(seed), values(seed + 1)] },
  };
};
/** How many of `ids` a conversation shares from the start. */
const sharing = (ids: number[]) => (header: { ids: number[] }) => {
  let n = 0;
  while (n < ids.length && header.ids[n] === ids[n]) n++;
  return n;
};

describe('conversations on disk', function () {
  this.timeout(120_000);
  let dir: string;
  const files = () => (existsSync(dir) ? readdirSync(dir).sort() : []);
  beforeEach(() => (dir = join(mkdtempSync(join(tmpdir(), 'd2c-shelf-')), 'conversations-cpu')));
  afterEach(() => rmSync(join(dir, '..'), { recursive: true, force: true }));

  it('takes back exactly what it shelved, once, in fp32 and fp16', async () => {
    for (const type of ['float32', 'float16'] as const) {
      const shelf = new ConversationShelf(dir);
      shelf.put(conversation(1, type));
      await shelf.flushed();
      const best = await shelf.best(sharing([5, 99, 99, 7, 1]));
      assert.equal(best.score, 5);
      assert.deepEqual(await shelf.take(best.name), conversation(1, type));
      assert.deepEqual(files(), [], 'taken, the file is gone');
      assert.equal(await shelf.take(best.name), undefined);
      assert.equal((await shelf.best(sharing([5]))).score, 0);
    }
  });

  it('offers and hands back a conversation whose write is still queued, which then writes nothing', async () => {
    const shelf = new ConversationShelf(dir);
    const sequence = conversation(1);
    shelf.put(sequence);
    const best = await shelf.best(sharing([5, 99, 99, 7, 1]));
    assert.equal(best.score, 5);
    assert.equal(await shelf.take(best.name), sequence, 'from memory, not a copy read back');
    await shelf.flushed();
    assert.deepEqual(files(), []);
    assert.equal((await shelf.best(sharing([5]))).score, 0);
  });

  it('offers the conversation a request keeps most of; another shelf finds them on disk', async () => {
    const shelf = new ConversationShelf(dir);
    shelf.put(conversation(1));
    shelf.put(conversation(2));
    shelf.put(conversation(2)); // the same conversation again: its file replaced
    await shelf.flushed();
    assert.equal(files().length, 2);
    const later = new ConversationShelf(dir); // the next server
    const best = await later.best(sharing([5, 99, 99, 7, 2, 8]));
    assert.equal(best.score, 5);
    assert.deepEqual(await later.take(best.name), conversation(2));
    assert.equal((await later.best(sharing([6]))).score, 0, 'nothing shares a first token');
  });

  it('drops files that are not whole, and old leftovers of killed writes, when it opens', async () => {
    const shelf = new ConversationShelf(dir);
    shelf.put(conversation(1));
    await shelf.flushed();
    const [name] = files();
    const bytes = readFileSync(join(dir, name!));
    writeFileSync(join(dir, name!), bytes.subarray(0, bytes.length - 4)); // cut short
    writeFileSync(join(dir, 'junk.kv'), 'not a conversation');
    writeFileSync(join(dir, 'a.kv.123.tmp'), 'a write in progress');
    writeFileSync(join(dir, 'b.kv.456.tmp'), 'a write killed an hour ago');
    const anHourAgo = new Date(Date.now() - 3_600_000);
    utimesSync(join(dir, 'b.kv.456.tmp'), anHourAgo, anHourAgo);
    assert.equal((await new ConversationShelf(dir).best(() => 1)).score, 0);
    assert.deepEqual(files(), ['a.kv.123.tmp']);
  });

  it('keeps the most recently shelved within its bound, and none past it', async () => {
    const measure = new ConversationShelf(join(dir, 'measure'));
    measure.put(conversation(1));
    await measure.flushed();
    const one = statSync(join(dir, 'measure', readdirSync(join(dir, 'measure'))[0]!)).size;
    rmSync(join(dir, 'measure'), { recursive: true });
    const shelf = new ConversationShelf(dir, 2.5 * one);
    for (const seed of [1, 2, 3]) {
      shelf.put(conversation(seed));
      await shelf.flushed();
      await new Promise((done) => setTimeout(done, 20)); // distinct times
    }
    assert.equal(files().length, 2);
    assert.equal((await shelf.best(sharing([5, 99, 99, 7, 1]))).score, 4, 'the oldest went');
    const tiny = new ConversationShelf(join(dir, 'tiny'), 47);
    tiny.put(conversation(1)); // 48 bytes of rows
    await tiny.flushed();
    assert.equal(existsSync(join(dir, 'tiny')), false);
  });

  it('writes nothing that would leave the disk under 2 GiB free, and drops a failed write', async () => {
    const free = (bytes: number) => async () => bytes;
    const nearlyFull = new ConversationShelf(dir, undefined, free(KEEP_FREE_BYTES + 47));
    nearlyFull.put(conversation(1));
    await nearlyFull.flushed();
    assert.deepEqual(files(), []);
    const enough = new ConversationShelf(dir, undefined, free(KEEP_FREE_BYTES + 48));
    enough.put(conversation(1));
    await enough.flushed();
    assert.equal(files().length, 1);

    const blocked = join(dir, 'file');
    writeFileSync(blocked, '');
    const broken = new ConversationShelf(join(blocked, 'conversations'));
    broken.put(conversation(1));
    await broken.flushed();
    assert.equal((await broken.best(() => 1)).score, 0);
  });

  it("reads the disk's free space, and takes a file system that does not say as room", async () => {
    mkdirSync(dir, { recursive: true });
    const free = await diskFreeBytes(dir);
    assert.ok(Number.isFinite(free) && free > 0, String(free));
    assert.equal(await diskFreeBytes(join(dir, 'not', 'there')), Infinity);
  });

  it("the CPU cache's rows are handed over compacted, and come back as they were", () => {
    const text = { numLayers: 2, numKvHeads: 2, numHeads: 4, headDim: 3 } as TextConfig;
    const cache = new HostKvCache(text, 'float32', 4);
    cache.bind({}, 0, 5); // capacity 8: rows are strided
    const rowsOf = (l: number, kind: string, n: number) =>
      Float32Array.from({ length: 6 * n }, (_, i) => l * 1000 + (kind === 'k' ? 0 : 500) + i);
    const result: Record<string, { data: Float32Array }> = {};
    for (let l = 0; l < 2; l++) {
      result[DECODER_OUTPUTS.newKey(l)] = { data: rowsOf(l, 'k', 5) };
      result[DECODER_OUTPUTS.newValue(l)] = { data: rowsOf(l, 'v', 5) };
    }
    cache.commit(result as never);
    const rows = cache.detachRows(5);
    assert.equal(rows.arrays.length, 4);
    // Keys transposed [KV, hd, rows]: each of the 6 key rows holds its 5 positions in order.
    assert.deepEqual(rows.arrays[0], rowsOf(0, 'k', 5));
    assert.deepEqual(rows.arrays[3], rowsOf(1, 'v', 5));
    assert.throws(() => cache.detachRows(1), /cannot hand over/, 'detached, the cache is empty');

    const restored = new HostKvCache(text, 'float32', 4);
    restored.loadRows(rows, 5);
    assert.deepEqual(restored.detachRows(5), rows);
    assert.throws(() => restored.loadRows(rows, 4), /do not fit/);
    assert.throws(() => restored.loadRows({ ...rows, form: 'other' }, 5), /do not fit/);
    assert.throws(() => new HostKvCache(text, 'float16', 4).loadRows(rows, 5), /do not fit/);
  });

  describe('in the engine (tiny checkpoint, CPU, fp32)', () => {
    let cacheDir: string;
    let buildDir: string;
    const engines: Engine[] = [];
    const png = (name: string) => new Uint8Array(readFileSync(join(TINY_IMAGES_DIR, name)));
    const diagram = png('diagram_450x230.png');
    const mockup = png('mockup_320x256.png');
    const greedy = { greedy: true };
    const ask = (picture: Uint8Array, text = 'Return the XML.'): GenerateRequest => ({
      messages: [
        {
          role: 'user',
          content: [
            { type: 'image', image: picture },
            { type: 'text', text },
          ],
        },
      ],
      maxNewTokens: 12,
      sampling: greedy,
    });
    const refine = (first: GenerateRequest, answer: string): GenerateRequest => ({
      messages: [
        ...first.messages,
        { role: 'assistant', content: answer } as ChatMessage,
        { role: 'user', content: 'Make the boxes round.' },
      ],
      maxNewTokens: 12,
      sampling: greedy,
    });
    /** An engine on the shared build, its conversations shelved (or not). */
    const start = async (shelve = true) => {
      const model = await loadModel(TINY_MODEL_DIR, { cacheDir, device: 'cpu', precision: 'fp32' });
      buildDir = model.buildDir!;
      const engine = createChatEngine(model, loadChatCheckpoint(TINY_MODEL_DIR), {
        modelName: 'tiny',
        conversationShelfBytes: shelve ? 1024 ** 3 : 0,
        minShelvedTokens: 1,
      });
      engines.push(engine);
      return engine;
    };
    const stop = () => engines.pop()!.dispose();
    const shelved = () => {
      const shelf = join(buildDir, 'conversations-cpu');
      return existsSync(shelf) ? readdirSync(shelf).length : 0;
    };
    before(() => (cacheDir = mkdtempSync(join(tmpdir(), 'd2c-shelf-engine-'))));
    afterEach(async () => {
      while (engines.length) await stop();
      rmSync(join(buildDir, 'conversations-cpu'), { recursive: true, force: true });
    });
    after(() => rmSync(cacheDir, { recursive: true, force: true }));

    it('goes back to a conversation after another image, with the tokens it would have given', async () => {
      const first = ask(diagram);
      // The reference: the refinement straight after its conversation, in an engine without a shelf.
      const plain = await start(false);
      const answer = await plain.generate(first);
      const direct = await plain.generate(refine(first, answer.text));
      await stop();
      assert.equal(shelved(), 0, 'an engine not asked to keep conversations keeps none');

      const engine = await start();
      await engine.generate(first);
      const other = await engine.generate(ask(mockup));
      assert.equal(other.stats!.reusedTokens, 0);
      const back = await engine.generate(refine(first, answer.text));
      assert.deepEqual(back.stats, direct.stats);
      assert.deepEqual(back.tokenIds, direct.tokenIds);
      // Taken back, its file is gone; the mockup's conversation is on the shelf now.
      assert.equal(shelved(), 1);
    });

    it('goes on after a restart from the conversation it held when it stopped', async () => {
      const first = ask(diagram);
      const plain = await start(false);
      const answer = await plain.generate(first);
      const direct = await plain.generate(refine(first, answer.text));
      await stop();

      await (await start()).generate(first);
      await stop();
      assert.equal(shelved(), 1);
      const restarted = await (await start()).generate(refine(first, answer.text));
      assert.deepEqual(restarted.stats, direct.stats);
      assert.deepEqual(restarted.tokenIds, direct.tokenIds);
      assert.equal(shelved(), 0);
    });

    it('a damaged file costs only the reuse', async () => {
      const first = ask(diagram);
      const answer = await (await start()).generate(first);
      await stop();
      const shelf = join(buildDir, 'conversations-cpu');
      const [name] = readdirSync(shelf);
      const bytes = readFileSync(join(shelf, name!));
      writeFileSync(join(shelf, name!), bytes.subarray(0, bytes.length / 2));
      const reference = await (await start(false)).generate(refine(first, answer.text));
      await stop();
      const refined = await (await start()).generate(refine(first, answer.text));
      assert.equal(refined.stats!.reusedTokens, 0);
      assert.deepEqual(refined.tokenIds, reference.tokenIds);
    });
  });
});
