/**
 * Conversations kept on disk (conversation-shelf.ts): the file format, taken off once, files not
 * whole refused, the bound and the disk's free space; the CPU and GPU caches' rows handed over and
 * taken back; and in the engine, on the CPU and on WebGPU, going back to a conversation (after
 * another image, after a restart) with exactly the tokens the cache would have given.
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
import * as ort from 'onnxruntime-node';
import { HandoverKvCache, HostKvCache } from '../../server/engine/runtime/kv-cache';
import { createKvPadder } from '../../server/engine/runtime/kv-padder';
import { loadModel } from '../../server/engine/runtime/load-model';
import { TINY_IMAGES_DIR, TINY_MODEL_DIR } from './golden-fixture';
import { webgpuTestable } from './support/webgpu';

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
    const taken = await shelf.take(best.name);
    assert.equal(taken?.rows, sequence.rows, 'from memory, not a copy read back');
    await shelf.flushed();
    assert.deepEqual(files(), []);
    assert.equal((await shelf.best(sharing([5]))).score, 0);
  });

  it('shelves rows still on their way from a GPU, and drops a conversation whose download failed', async () => {
    const shelf = new ConversationShelf(dir);
    const arriving = conversation(1);
    let arrive!: (rows: KvRows) => void;
    shelf.put({ ...arriving, rows: new Promise<KvRows>((resolve) => (arrive = resolve)) });
    assert.equal((await shelf.best(sharing([5]))).score, 1, 'offered before its rows arrive');
    arrive(arriving.rows);
    await shelf.flushed();
    assert.equal(files().length, 1);
    assert.deepEqual(await new ConversationShelf(dir).take(files()[0]!), arriving);

    shelf.put({ ...conversation(2), rows: Promise.reject(new Error('device lost')) });
    const failed = await shelf.best(sharing([5, 99, 99, 7, 2]));
    assert.equal(await shelf.take(failed.name), undefined);
    shelf.put({ ...conversation(3), rows: Promise.reject(new Error('device lost')) });
    await shelf.flushed();
    assert.deepEqual(files(), []);
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

  it("the handed-over cache's host tensors are cut to their valid rows, and saved rows come back as host tensors", async () => {
    const text = { numLayers: 1, numKvHeads: 2, numHeads: 4, headDim: 3 } as TextConfig;
    const cache = new HandoverKvCache(text, 'float16');
    // Presents of 4 rows (the spare rows a padded tensor carries), of which 3 are valid.
    const present = (base: number) =>
      new ort.Tensor(
        'float16',
        Uint16Array.from({ length: 24 }, (_, i) => base + i),
        [1, 2, 4, 3],
      );
    cache.commit({
      [DECODER_OUTPUTS.presentKey(0)]: present(0),
      [DECODER_OUTPUTS.presentValue(0)]: present(100),
    });
    const detaching = cache.detachRows(3);
    assert.deepEqual(cache.rows, [], 'the cache is empty before the rows arrive');
    const rows = await detaching;
    assert.equal(rows.form, HandoverKvCache.FORM);
    // Per head its first 3 rows of 3 values: head 0 = 0..8, head 1 = 12..20.
    const valid = (base: number) =>
      Uint16Array.from(
        [0, 1, 2, 3, 4, 5, 6, 7, 8, 12, 13, 14, 15, 16, 17, 18, 19, 20],
        (v) => base + v,
      );
    assert.deepEqual(rows.arrays, [valid(0), valid(100)]);

    const restored = new HandoverKvCache(text, 'float16');
    restored.loadRows(rows, 3);
    assert.deepEqual(restored.rows, [3, 3]);
    const feeds: Record<string, ort.Tensor> = {};
    restored.bind(feeds);
    assert.deepEqual(
      Object.values(feeds).map((t) => [...(t.data as Uint16Array)]),
      [[...valid(0)], [...valid(100)]],
    );
    assert.throws(() => restored.loadRows(rows, 2), /do not fit/);
    assert.throws(() => new HandoverKvCache(text, 'float32').loadRows(rows, 3), /do not fit/);
    assert.throws(() => restored.loadRows({ ...rows, form: HostKvCache.FORM }, 3), /do not fit/);
  });

  it("the GPU cache's rows, padded on the device, are cut there and read back", async function () {
    if (!(await webgpuTestable())) this.skip();
    const text = { numLayers: 2, numKvHeads: 2, numHeads: 4, headDim: 8 } as TextConfig;
    const padder = await createKvPadder(text, 'float16', { executionProviders: ['webgpu'] });
    try {
      const rows: KvRows = {
        form: HandoverKvCache.FORM,
        type: 'float16',
        arrays: Array.from({ length: 4 }, (_, a) =>
          Uint16Array.from({ length: 2 * 5 * 8 }, (_, i) => 0x3c00 + a * 100 + i),
        ),
      };
      const cache = new HandoverKvCache(text, 'float16', padder, 0);
      cache.loadRows(rows, 5); // host tensors of 5 rows
      await cache.makeRoom(9); // padded on the GPU: more rows than 5, in GPU buffers
      assert.ok(Math.min(...cache.rows) > 5, String(cache.rows));
      assert.deepEqual(await cache.detachRows(5), rows);
    } finally {
      await padder.release();
    }
  });

  // On WebGPU the default precision: int4 weights, an fp16 cache read back from the GPU.
  for (const [device, precision] of [
    ['cpu', 'fp32'],
    ['webgpu', 'int4'],
  ] as const) {
    describe(`in the engine (tiny checkpoint, ${device}, ${precision})`, () => {
      before(async function () {
        if (device === 'webgpu' && !(await webgpuTestable())) this.skip();
      });
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
        const model = await loadModel(TINY_MODEL_DIR, { cacheDir, device, precision });
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
        const shelf = join(buildDir, `conversations-${device}`);
        return existsSync(shelf) ? readdirSync(shelf).length : 0;
      };
      before(() => (cacheDir = mkdtempSync(join(tmpdir(), 'd2c-shelf-engine-'))));
      afterEach(async () => {
        while (engines.length) await stop();
        if (buildDir)
          rmSync(join(buildDir, `conversations-${device}`), { recursive: true, force: true });
      });
      after(() => cacheDir && rmSync(cacheDir, { recursive: true, force: true }));

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
        const shelf = join(buildDir, `conversations-${device}`);
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
  }
});
