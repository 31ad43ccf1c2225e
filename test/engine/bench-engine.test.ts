/**
 * The benchmark scripts themselves (scripts/bench-engine.ts, scripts/bench/vision-formats.ts,
 * scripts/bench/int4-kernel-rows.ts, scripts/bench/background-priority.ts),
 * run on the tiny checkpoint so they stay runnable: the GPU run (scripts/gpu/run.sh) gets one
 * try on a lent machine, and its summary reads these JSON fields. Figures are printed, never
 * asserted.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { randomFillSync } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { readModelConfig } from '../../server/engine/checkpoint/config';
import { DEFAULT_PROMPT_LOOKUP } from '../../server/engine/generation/prompt-lookup';
import { readStreamsModule } from '../../scripts/bench/memory-bandwidth';
import { TINY_MODEL_DIR } from './golden-fixture';
import { requireWebGpu } from './support/webgpu';

const ROOT = resolve(__dirname, '..', '..');

/** The JSON lines a script prints. */
function runScript(
  script: string,
  args: string[],
  env: NodeJS.ProcessEnv = {},
): Promise<Record<string, unknown>[]> {
  return new Promise((done, fail) => {
    execFile(
      process.execPath,
      ['--require', 'tsx/cjs', join(ROOT, script), ...args],
      { cwd: ROOT, env: { ...process.env, ...env }, timeout: 240_000 },
      (error, stdout, stderr) => {
        if (error) return fail(new Error(`${script} failed: ${error.message}\n${stderr}`));
        const lines = stdout
          .trim()
          .split('\n')
          .filter((line) => line.startsWith('{'));
        done(lines.map((line) => JSON.parse(line) as Record<string, unknown>));
      },
    );
  });
}

async function bench(args: string[], cacheDir: string): Promise<Record<string, unknown>> {
  const lines = await runScript('scripts/bench-engine.ts', args, { BENCH_CACHE_DIR: cacheDir });
  return lines.at(-1)!;
}

for (const device of ['cpu', 'webgpu'] as const) {
  describe(`npm run bench:engine on the tiny checkpoint (${device})`, function () {
    this.timeout(300_000);
    let cacheDir: string;
    before(async function () {
      if (device === 'webgpu') await requireWebGpu(this);
      cacheDir = mkdtempSync(join(tmpdir(), 'd2c-bench-'));
    });
    after(() => cacheDir && rmSync(cacheDir, { recursive: true, force: true }));

    it('prints every figure of a cold prompt and a refinement as one JSON line', async () => {
      const result = await bench(
        ['--model', TINY_MODEL_DIR, '--device', device, '--tokens', '8', '--json'],
        cacheDir,
      );
      console.log(`      ${JSON.stringify(result)}`);
      assert.equal(result.device, device);
      assert.equal(result.precision, 'int4');
      for (const key of ['ttft_ms', 'decode_tok_s', 'vision_ms', 'prefill_ms', 'refine_ttft_ms']) {
        assert.ok(typeof result[key] === 'number' && result[key] > 0, key);
      }
      assert.equal(typeof result.refine_spec_tok_s, 'number');
      // A refinement read ahead runs only its last token once asked for.
      assert.equal(result.refine_read_ahead_prefilled, 1);
      assert.ok((result.refine_read_ahead_ttft_ms as number) > 0);
      // So does Generate after its image and instruction were read ahead.
      assert.equal(result.generate_read_ahead_prefilled, 1);
      assert.ok((result.instruction_read_ahead_prefilled as number) < 20);
      // Stops during the tiny model's short prefill may come after it ended (then not counted).
      assert.ok(result.stop_wait_mean_ms === null || (result.stop_wait_mean_ms as number) >= 0);
      assert.ok((result.stops_measured as number) <= 5);
      assert.equal(result.prefill_chunk, 'default');
      // After a restart the follow-up goes on from the saved conversation (only its last token
      // runs), with the token it gets from nothing.
      const followUp = result.restart_follow_up_prompt_tokens as number;
      assert.equal(result.restart_follow_up_reused_tokens, followUp - 1);
      assert.equal(result.restart_follow_up_same_token, true);
      assert.ok((result.sequence_mb as number) > 0);
      // Back to it after another screenshot: from the shelf, the same token.
      assert.equal(result.switch_back_reused_tokens, followUp - 1);
      assert.equal(result.switch_back_same_token, true);
      // The refinement reuses the first conversation's cache and speculation changes nothing.
      assert.ok((result.refine_reused_tokens as number) > (result.prompt_tokens as number));
      assert.equal(result.spec_same_tokens, true);
      assert.equal(
        result.draft_planner,
        `most ${DEFAULT_PROMPT_LOOKUP.draftTokens}, ${device}'s run cost`,
      );
      // The first answer again with speculation: the same greedy tokens.
      assert.equal(typeof result.decode_spec_tok_s, 'number');
      assert.equal(result.decode_spec_same_tokens, true);
      // The memory roofline on the CPU; the int4 kernel's own ceiling on both, measured in the run.
      assert.equal(result.roofline_ratio === null, device !== 'cpu');
      assert.equal(result.read_roofline_ratio === null, device !== 'cpu');
      if (device === 'cpu') {
        for (const key of ['bandwidth_gb_s', 'read_bandwidth_gb_s']) {
          assert.ok(typeof result[key] === 'number' && result[key] > 0, key);
        }
      }
      // A step reads the KV cache too: fp32 keys and values of every layer at the mean cached
      // length of the timed steps (the prompt, then all but the last generated token).
      const text = readModelConfig(TINY_MODEL_DIR).text;
      const meanRows =
        (result.prompt_tokens as number) + ((result.decode_tokens as number) - 2) / 2;
      assert.equal(
        result.kv_cache_bytes_per_token,
        text.numLayers * 2 * text.numKvHeads * text.headDim * meanRows * 4,
      );
      assert.ok((result.weight_bytes_per_token as number) > 0);
      for (const key of ['kernel_tok_s', 'kernel_gb_s', 'kernel_ratio']) {
        assert.ok(typeof result[key] === 'number' && result[key] > 0, key);
      }
      assert.equal(result.kernel_gb_s_one_thread === null, device !== 'cpu');
    });

    it('vision-formats: one line per weight format, timed, with its agreement to float', async () => {
      const lines = await runScript('scripts/bench/vision-formats.ts', [
        ...['--model', TINY_MODEL_DIR, '--device', device, '--image', '320x256', '--runs', '1'],
      ]);
      for (const line of lines) console.log(`      ${JSON.stringify(line)}`);
      const expected = device === 'cpu' ? ['float', 'int8'] : ['float', 'int8-blocks', 'int4'];
      assert.deepEqual(
        lines.map((line) => line.format),
        expected,
      );
      for (const line of lines) {
        assert.equal(line.patches, 16 * 20);
        assert.ok((line.vision_ms as number) > 0);
        // 4-bit blocks of the tiny model's random 32-wide layers: far coarser.
        const bound = line.format === 'int4' ? 0.9 : 0.999;
        assert.ok(
          (line.cosine_to_first as number) > bound,
          `${line.format} ${line.cosine_to_first}`,
        );
      }
    });

    it('int4-kernel-rows: a line per format and run rows, each row count against one row', async () => {
      const formats = device === 'cpu' ? ['32:zp:4', '32:sym:0'] : ['32:sym:4', '32:sym:0'];
      const lines = await runScript('scripts/bench/int4-kernel-rows.ts', [
        ...['--device', device, '--formats', formats.join(','), '--rows', '1,4', '--rounds', '1'],
        ...['--config', join(TINY_MODEL_DIR, 'config.json'), '--cache', cacheDir],
      ]);
      for (const line of lines) console.log(`      ${JSON.stringify(line)}`);
      const tiny = readModelConfig(TINY_MODEL_DIR).text;
      const format = (line: Record<string, unknown>) =>
        `${line.block_size}:${line.zero_points ? 'zp' : 'sym'}:${line.accuracy_level}`;
      assert.deepEqual(
        lines.map((line) => [format(line), line.rows]),
        formats.flatMap((spec) => [1, 4].map((rows) => [spec, rows])),
      );
      for (const line of lines) {
        assert.equal(line.matrices, 4 * tiny.numLayers + 1);
        assert.ok((line.median_ms as number) > 0);
        if (line.rows === 1) assert.equal(line.vs_1_rows, 1);
      }
    });
  });
}

describe('background-priority on the tiny checkpoint (CPU)', function () {
  this.timeout(300_000);
  let cacheDir: string;
  before(() => (cacheDir = mkdtempSync(join(tmpdir(), 'd2c-priority-'))));
  after(() => cacheDir && rmSync(cacheDir, { recursive: true, force: true }));

  it('prints the editor-like task alone and beside the server at each priority', async () => {
    const lines = await runScript(
      'scripts/bench/background-priority.ts',
      ['--model', TINY_MODEL_DIR, '--seconds', '1'],
      { BENCH_CACHE_DIR: cacheDir },
    );
    console.log(lines.map((line) => `      ${JSON.stringify(line)}`).join('\n'));
    assert.deepEqual(
      lines.map((line) => line.server_priority),
      ['normal', 'below normal'],
    );
    for (const line of lines) {
      for (const key of ['editor_work_p50_ms', 'alone_work_p50_ms', 'editor_timer_late_p95_ms']) {
        assert.equal(typeof line[key], 'number', key);
      }
      assert.ok((line.server_prefills as number) > 0, 'the server prefilled while it ran');
    }
  });
});

describe('memory-bandwidth: the read loop behind the read-only roofline', () => {
  // Lane 0 of the XOR of every 16-byte chunk it loaded: the XOR of their first 32-bit words.
  const expected = (words: Uint32Array, streams: number, stride: number, bytes: number) => {
    let x = 0;
    for (let k = 0; k < streams; k++) {
      for (let i = 0; i < bytes; i += 16) x ^= words[(k * stride + i) / 4];
    }
    return x | 0;
  };

  for (const streams of [1, 8]) {
    it(`reads every cache line of each of ${streams} stream(s), and only those`, () => {
      const mem = new WebAssembly.Memory({ initial: 1 });
      const words = new Uint32Array(mem.buffer);
      randomFillSync(words);
      const instance = new WebAssembly.Instance(
        new WebAssembly.Module(readStreamsModule(streams)),
        {
          m: { mem },
        },
      );
      const read = instance.exports.read as (base: number, stride: number, bytes: number) => number;
      const stride = 65536 / streams;
      assert.equal(read(0, stride, stride), expected(words, streams, stride, stride));
      assert.equal(read(0, stride, 128), expected(words, streams, stride, 128));
    });
  }
});
