/**
 * Worker thread entry of parallel-resize.ts: runs one pass of the bicubic resize over the rows
 * it is given, reading and writing the caller's shared memory, and says when it is done.
 */
import { parentPort } from 'node:worker_threads';
import { type ResizePass, type RowRange, resampleRows, resizeBicubicAntialiased } from './bicubic';

/** A band of one pass's rows, over the caller's shared memory. */
export type ResizeTask = { pass: ResizePass<SharedArrayBuffer>; rows: RowRange };

export type ResizeReply = { ok: true } | { ok: false; message: string };

function run({ pass, rows }: ResizeTask): void {
  const view = (buffer: SharedArrayBuffer) => new Uint8Array(buffer);
  resampleRows({ ...pass, src: view(pass.src), dst: view(pass.dst) }, rows);
}

parentPort?.on('message', (task: ResizeTask) => {
  let reply: ResizeReply;
  try {
    run(task);
    reply = { ok: true };
  } catch (error) {
    reply = { ok: false, message: (error as Error).message };
  }
  parentPort?.postMessage(reply);
});

/**
 * Compiles the passes before the first real image: a cold first resize ran at a third of the
 * warm speed here, while two workers and V8's compiler threads shared the cores.
 */
function warmUp(): void {
  const [size, out] = [384, 288];
  const src = new Uint8Array(size * size * 3).map((_, i) => (i * 31) & 255);
  for (let round = 0; round < 4; round++) resizeBicubicAntialiased(src, size, size, 3, out, out);
}
warmUp();
