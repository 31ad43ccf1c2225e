/**
 * The decoder's conversation kept on disk across a restart (sequence-disk-store.ts): the file
 * format, used once, refused when not whole or too large; the CPU cache's rows saved and taken
 * back; and in the engine, a refinement after a restart going on from the saved conversation
 * with exactly the tokens the first engine would have given it.
 */
import { strict as assert } from 'node:assert';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TextConfig } from '../../server/engine/checkpoint/config';
import type { ChatMessage, Engine, GenerateRequest, KvRows } from '../../server/engine/contracts';
import { loadEngine } from '../../server/engine/engine';
import { diskFreeBytes, KEEP_FREE_BYTES } from '../../server/engine/generation/disk-space';
import {
  SequenceDiskStore,
  type StoredSequence,
} from '../../server/engine/generation/sequence-disk-store';
import { DECODER_OUTPUTS } from '../../server/engine/onnx/decoder-graph';
import { HostKvCache } from '../../server/engine/runtime/kv-cache';
import { TINY_IMAGES_DIR, TINY_MODEL_DIR } from './golden-fixture';

const sequence = (type: KvRows['type'] = 'float32'): StoredSequence => {
  const values = (seed: number) =>
    type === 'float16'
      ? Uint16Array.from({ length: 6 }, (_, i) => seed * 100 + i)
      : Float32Array.from({ length: 6 }, (_, i) => Math.sin(seed + i));
  return {
    ids: [5, 99, 99, 7],
    imageKeys: ['abc@1x2x2'],
    rows: { form: 'test-form', type, arrays: [values(1), values(2)] },
  };
};

describe('conversation on disk across a restart', function () {
  this.timeout(120_000);
  let dir: string;
  let file: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'd2c-sequence-'));
    file = join(dir, 'sequence-cpu.kv');
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('takes back exactly what it saved, once, in fp32 and fp16', async () => {
    for (const type of ['float32', 'float16'] as const) {
      const store = new SequenceDiskStore(file);
      assert.equal(await store.save(sequence(type)), true);
      let seen: unknown;
      const taken = await store.take((header) => ((seen = header), true));
      assert.deepEqual(taken, sequence(type));
      assert.deepEqual(seen, {
        ids: [5, 99, 99, 7],
        imageKeys: ['abc@1x2x2'],
        form: 'test-form',
        type,
        lengths: [6, 6],
      });
      assert.equal(existsSync(file), false, 'a file is used once');
      assert.equal(await store.take(() => true), undefined);
    }
  });

  it('drops a sequence the request does not want, and a file that is not whole', async () => {
    const store = new SequenceDiskStore(file);
    await store.save(sequence());
    assert.equal(await store.take(() => false), undefined);
    assert.equal(existsSync(file), false);

    await store.save(sequence());
    const bytes = readFileSync(file);
    writeFileSync(file, bytes.subarray(0, bytes.length - 4)); // cut short
    assert.equal(await store.take(() => true), undefined);
    assert.equal(existsSync(file), false);
    for (const junk of ['', 'not a sequence', '\xff\xff\xff\xff{']) {
      writeFileSync(file, junk);
      assert.equal(await store.take(() => true), undefined);
    }
  });

  it('saves nothing past its bound, clears a killed save, and rejects a failed write', async () => {
    assert.equal(await new SequenceDiskStore(file, 47).save(sequence()), false);
    assert.equal(existsSync(file), false);
    writeFileSync(`${file}.12345.tmp`, 'half a save'); // a process killed while writing
    assert.equal(await new SequenceDiskStore(file, 48).save(sequence()), true);
    assert.deepEqual(readdirSync(dir), ['sequence-cpu.kv']);

    const blocked = join(dir, 'file');
    writeFileSync(blocked, '');
    await assert.rejects(new SequenceDiskStore(join(blocked, 'sequence-cpu.kv')).save(sequence()));
  });

  it('saves nothing that would leave the disk under 2 GiB free', async () => {
    const free = (bytes: number) => async () => bytes;
    rmSync(file, { force: true });
    assert.equal(
      await new SequenceDiskStore(file, 1e9, free(KEEP_FREE_BYTES + 47)).save(sequence()),
      false,
    );
    assert.equal(existsSync(file), false);
    assert.equal(
      await new SequenceDiskStore(file, 1e9, free(KEEP_FREE_BYTES + 48)).save(sequence()),
      true,
    );
  });

  it("reads the disk's free space, and takes a file system that does not say as room", async () => {
    const free = await diskFreeBytes(dir);
    assert.ok(Number.isFinite(free) && free > 0, String(free));
    assert.equal(await diskFreeBytes(join(dir, 'not', 'there')), Infinity);
  });

  it("the CPU cache's rows come back as they were, and rows of another shape are refused", () => {
    const text = { numLayers: 2, numKvHeads: 2, numHeads: 4, headDim: 3 } as TextConfig;
    const cache = new HostKvCache(text, 'float32', 4);
    const feeds = {};
    cache.bind(feeds, 0, 5); // capacity 8
    const rowsOf = (l: number, kind: string, n: number) =>
      Float32Array.from({ length: 6 * n }, (_, i) => l * 1000 + (kind === 'k' ? 0 : 500) + i);
    const result: Record<string, { data: Float32Array }> = {};
    for (let l = 0; l < 2; l++) {
      result[DECODER_OUTPUTS.newKey(l)] = { data: rowsOf(l, 'k', 5) };
      result[DECODER_OUTPUTS.newValue(l)] = { data: rowsOf(l, 'v', 5) };
    }
    cache.commit(result as never);
    const saved = cache.saveRows(5);
    assert.equal(saved.arrays.length, 4);
    // Keys transposed [KV, hd, rows]: each of the 6 key rows holds its 5 positions in order.
    assert.deepEqual(saved.arrays[0], rowsOf(0, 'k', 5));
    assert.deepEqual(saved.arrays[3], rowsOf(1, 'v', 5));

    const restored = new HostKvCache(text, 'float32', 4);
    restored.loadRows(saved, 5);
    assert.deepEqual(restored.saveRows(5), saved);
    assert.throws(() => restored.loadRows(saved, 4), /do not fit/);
    assert.throws(() => restored.loadRows({ ...saved, form: 'other' }, 5), /do not fit/);
    assert.throws(() => new HostKvCache(text, 'float16', 4).loadRows(saved, 5), /do not fit/);
  });

  describe('in the engine (tiny checkpoint, CPU, fp32)', () => {
    let cacheDir: string;
    const engines: Engine[] = [];
    const png = (name: string) => new Uint8Array(readFileSync(join(TINY_IMAGES_DIR, name)));
    const image = png('diagram_450x230.png');
    const ask = (text: string, picture = image): ChatMessage[] => [
      {
        role: 'user',
        content: [
          { type: 'image', image: picture },
          { type: 'text', text },
        ],
      },
    ];
    const greedy = { greedy: true };
    const first: GenerateRequest = {
      messages: ask('Return the XML.'),
      maxNewTokens: 12,
      sampling: greedy,
    };
    const refine = (answer: string): GenerateRequest => ({
      messages: [
        ...first.messages,
        { role: 'assistant', content: answer },
        { role: 'user', content: 'Make the boxes round.' },
      ],
      maxNewTokens: 12,
      sampling: greedy,
    });
    const start = async (keepSequenceOnDisk = true) => {
      const engine = await loadEngine({
        modelDir: TINY_MODEL_DIR,
        cacheDir,
        device: 'cpu',
        precision: 'fp32',
        keepSequenceOnDisk,
      });
      engines.push(engine);
      return engine;
    };
    const stop = () => engines.pop()!.dispose();
    const savedFiles = () =>
      readdirSync(cacheDir)
        .filter((name) => name.startsWith('fp32-'))
        .flatMap((build) => readdirSync(join(cacheDir, build)))
        .filter((name) => name.endsWith('.kv'));
    before(() => (cacheDir = mkdtempSync(join(tmpdir(), 'd2c-sequence-engine-'))));
    after(async () => {
      await Promise.all(engines.map((engine) => engine.dispose()));
      rmSync(cacheDir, { recursive: true, force: true });
    });

    it('a refinement after a restart goes on from the saved conversation, with the same tokens', async () => {
      // The reference: the refinement in the engine that answered the first request.
      const running = await start(false);
      const answer = await running.generate(first);
      const inProcess = await running.generate(refine(answer.text));
      assert.ok(inProcess.stats!.reusedTokens > 0);
      await stop();
      assert.deepEqual(savedFiles(), [], 'an engine not asked to keep it saves nothing');

      await (await start()).generate(first);
      await stop();
      assert.deepEqual(savedFiles(), ['sequence-cpu.kv']);
      const restarted = await (await start()).generate(refine(answer.text));
      assert.deepEqual(restarted.stats, inProcess.stats);
      assert.deepEqual(restarted.tokenIds, inProcess.tokenIds);
      assert.deepEqual(savedFiles(), [], 'taken, the file is gone');
      await stop();
    });

    it('a first request with another image prefills in full and drops it', async () => {
      const mockup: GenerateRequest = {
        ...first,
        messages: ask('Return the XML.', png('mockup_320x256.png')),
      };
      await (await start()).generate(first);
      await stop();
      const cold = await (await start(false)).generate(mockup);
      await stop();
      assert.deepEqual(savedFiles(), ['sequence-cpu.kv']);
      const other = await (await start()).generate(mockup);
      assert.equal(other.stats!.reusedTokens, 0);
      assert.deepEqual(other.tokenIds, cold.tokenIds);
      assert.deepEqual(savedFiles(), []);
      await stop();
    });

    it('a new instruction on the same image keeps the image from the saved conversation', async () => {
      await (await start()).generate(first);
      await stop();
      const svg = { ...first, messages: ask('Return SVG.') };
      const cold = await (await start(false)).generate(svg);
      await stop();
      const again = await (await start()).generate(svg);
      assert.ok(again.stats!.reusedTokens > 0);
      assert.equal(
        again.stats!.prefilledTokens,
        cold.stats!.prefilledTokens - again.stats!.reusedTokens,
      );
      assert.deepEqual(again.tokenIds, cold.tokenIds);
      await stop();
    });

    it('a damaged file costs only the reuse', async () => {
      const engine = await start();
      const answer = await engine.generate(first);
      await stop();
      const [build] = readdirSync(cacheDir).filter((name) => name.startsWith('fp32-'));
      const path = join(cacheDir, build!, 'sequence-cpu.kv');
      const bytes = readFileSync(path);
      writeFileSync(path, bytes.subarray(0, bytes.length / 2));
      const reference = await (await start(false)).generate(refine(answer.text));
      await stop();
      const refined = await (await start()).generate(refine(answer.text));
      assert.equal(refined.stats!.reusedTokens, 0);
      assert.deepEqual(refined.tokenIds, reference.tokenIds);
      assert.equal(existsSync(path), false);
    });
  });
});
