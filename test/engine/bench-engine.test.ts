/**
 * The benchmark script itself (scripts/bench-engine.ts), run on the tiny checkpoint so it stays
 * runnable: the GPU run (scripts/gpu/run.sh) gets one try on a lent machine, and its summary
 * reads these JSON fields. Figures are printed, never asserted.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { TINY_MODEL_DIR } from './golden-fixture';
import { requireWebGpu } from './support/webgpu';

const ROOT = resolve(__dirname, '..', '..');

function bench(args: string[], cacheDir: string): Promise<Record<string, unknown>> {
  return new Promise((done, fail) => {
    execFile(
      process.execPath,
      ['--require', 'tsx/cjs', join(ROOT, 'scripts', 'bench-engine.ts'), ...args],
      { cwd: ROOT, env: { ...process.env, BENCH_CACHE_DIR: cacheDir }, timeout: 240_000 },
      (error, stdout, stderr) => {
        if (error) return fail(new Error(`bench-engine failed: ${error.message}\n${stderr}`));
        const line = stdout.trim().split('\n').at(-1)!;
        done(JSON.parse(line) as Record<string, unknown>);
      },
    );
  });
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
  });
}
