/**
 * Worker thread entry of parallel-resize.ts: runs one pass of the bicubic resize over the rows
 * it is given, reading and writing the caller's shared memory, and says when it is done.
 */
import { parentPort } from 'node:worker_threads';
import {
  type AxisWeights,
  type RowRange,
  resampleHeight,
  resampleWidth,
  resizeBicubicAntialiased,
} from './bicubic';

export type ResizeTask = { src: SharedArrayBuffer; dst: SharedArrayBuffer; rows: RowRange } & (
  | { pass: 'width'; width: number; channels: number; outWidth: number; weights: AxisWeights }
  | { pass: 'height'; rowLength: number; weights: AxisWeights }
);

export type ResizeReply = { ok: true } | { ok: false; message: string };

function run(task: ResizeTask): void {
  const src = new Uint8Array(task.src);
  const dst = new Uint8Array(task.dst);
  if (task.pass === 'width') {
    resampleWidth(src, dst, task.width, task.channels, task.outWidth, task.weights, task.rows);
  } else {
    resampleHeight(src, dst, task.rowLength, task.weights, task.rows);
  }
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
