/**
 * What the local server's CPU work costs the editor, at normal and at below-normal priority
 * (the supervisor starts the server below normal):
 *   tsx scripts/bench/background-priority.ts [--model DIR] [--seconds N]
 *
 * For each priority, a child process loads the model on the CPU and prefills a 1,024-token
 * prompt over and over (what a screenshot read ahead does for ~20 s on two cores), while this
 * process runs an editor-like task: 4 ms of JavaScript, then a 12 ms timer, for --seconds. Prints
 * one JSON line per priority: how long each 4 ms of work took (p50, p95) and how late the timers
 * fired (p95), against the same task alone, and the child's prefill time. Default model: the
 * 2B-sized one bench:engine builds (.cache/bench-engine, `npm run bench:engine -- --prepare`).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { constants, setPriority } from 'node:os';
import { join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { loadModel } from '../../server/engine/runtime/load-model';

const ROOT = resolve(__dirname, '..', '..');
const BENCH_DIR = resolve(process.env.BENCH_CACHE_DIR ?? join(ROOT, '.cache', 'bench-engine'));

async function prefillForever(modelDir: string): Promise<void> {
  const model = await loadModel(modelDir, { device: 'cpu', cacheDir: join(BENCH_DIR, 'onnx') });
  const ids = Array.from({ length: 1024 }, (_, i) => 1000 + ((i * 7919) % 50000));
  const positions = ids.map((_, i) => i);
  console.log('loaded');
  for (;;) {
    const started = performance.now();
    await model.decoder.prefill({ inputIds: ids, positionIds: [positions, positions, positions] });
    console.log(`prefill ${performance.now() - started}`);
  }
}

function spin(iterations: number): number {
  let x = 0;
  for (let i = 0; i < iterations; i++) x += Math.sqrt(i);
  return x;
}

/** Iterations of spin() that take 4 ms on this machine with nothing else running. */
function calibrate(): number {
  let iterations = 1e6;
  for (let k = 0; k < 30; k++) spin(iterations); // optimised before it is timed
  const started = performance.now();
  spin(iterations);
  iterations = Math.round((iterations * 4) / (performance.now() - started));
  return iterations;
}

/** The editor-like task for `seconds`: each frame's work time and timer lateness, in ms. */
async function editorTask(
  iterations: number,
  seconds: number,
): Promise<{ work: number[]; late: number[] }> {
  const work: number[] = [];
  const late: number[] = [];
  const end = performance.now() + seconds * 1000;
  while (performance.now() < end) {
    const armed = performance.now();
    await new Promise((r) => setTimeout(r, 12));
    late.push(performance.now() - armed - 12);
    const started = performance.now();
    spin(iterations);
    work.push(performance.now() - started);
  }
  return { work, late };
}

function quantile(values: number[], q: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return Number(sorted[Math.floor(q * (sorted.length - 1))].toFixed(1));
}

async function underLoad(modelDir: string, priority: number, iterations: number, seconds: number) {
  const child: ChildProcess = spawn(
    process.execPath,
    ['--require', 'tsx/cjs', __filename, '--load', modelDir],
    { cwd: ROOT, stdio: ['ignore', 'pipe', 'inherit'] },
  );
  setPriority(child.pid!, priority);
  const prefills: number[] = [];
  const loaded = new Promise<void>((done) => {
    createInterface({ input: child.stdout! }).on('line', (line) => {
      if (line === 'loaded') done();
      else if (line.startsWith('prefill ')) prefills.push(Number(line.slice(8)));
    });
  });
  await loaded;
  const task = await editorTask(iterations, seconds);
  child.kill();
  return { task, prefills };
}

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  const option = (name: string) => {
    const at = args.indexOf(name);
    return at >= 0 ? args[at + 1] : undefined;
  };
  if (args[0] === '--load') return prefillForever(args[1]);
  const modelDir = resolve(option('--model') ?? join(BENCH_DIR, 'qwen3vl-2b-random'));
  const seconds = Number(option('--seconds') ?? 15);
  const iterations = calibrate();
  const alone = await editorTask(iterations, seconds);
  for (const [name, priority] of [
    ['normal', constants.priority.PRIORITY_NORMAL],
    ['below normal', constants.priority.PRIORITY_BELOW_NORMAL],
  ] as const) {
    const { task, prefills } = await underLoad(modelDir, priority, iterations, seconds);
    console.log(
      JSON.stringify({
        bench: 'background_priority',
        server_priority: name,
        editor_work_p50_ms: quantile(task.work, 0.5),
        editor_work_p95_ms: quantile(task.work, 0.95),
        editor_timer_late_p95_ms: quantile(task.late, 0.95),
        alone_work_p50_ms: quantile(alone.work, 0.5),
        alone_work_p95_ms: quantile(alone.work, 0.95),
        alone_timer_late_p95_ms: quantile(alone.late, 0.95),
        server_prefill_mean_ms: prefills.length
          ? Math.round(prefills.reduce((a, b) => a + b, 0) / prefills.length)
          : null,
        server_prefills: prefills.length,
      }),
    );
  }
}

main().catch((error) => {
  console.error(error);
  process.exitCode = 1;
});
