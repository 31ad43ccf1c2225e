/**
 * The benchmark scripts themselves (scripts/bench-engine.ts, scripts/bench/vision-formats.ts),
 * run on the tiny checkpoint so they stay runnable: the GPU run (scripts/gpu/run.sh) gets one
 * try on a lent machine, and its summary reads these JSON fields. Figures are printed, never
 * asserted.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
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
      // The refinement reuses the first conversation's cache and speculation changes nothing.
      assert.ok((result.refine_reused_tokens as number) > (result.prompt_tokens as number));
      assert.equal(result.spec_same_tokens, true);
      assert.equal(result.draft_planner, `most 16, ${device}'s run cost`);
      // The first answer again with speculation: the same greedy tokens.
      assert.equal(typeof result.decode_spec_tok_s, 'number');
      assert.equal(result.decode_spec_same_tokens, true);
      // The memory roofline on the CPU; the int4 kernel's own ceiling on both, measured in the run.
      assert.equal(result.roofline_ratio === null, device !== 'cpu');
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
  });
}
