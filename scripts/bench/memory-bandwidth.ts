/**
 * This machine's memory bandwidth with every core busy, in bytes moved per second, for the
 * decode roofline of bench-engine:
 * - 'copy': memcpy (each byte read once and written once), the memory system's ceiling;
 * - 'read': reads alone, as decoding's weights and KV cache are. Each core keeps only so many
 *   reads in flight per stream, so a single sequential stream (memcmp, memchr) reads well below
 *   what the memory gives: a small WebAssembly loop reads 8 streams at once, each one cache line
 *   per iteration (measured on a 2-core VM: 1 stream 13-15 GB/s, 8 streams 26-31, the same as
 *   the equivalent C with AVX-512 loads).
 * Each worker owns a 256 MB buffer (well beyond the caches) and is timed after touching it once.
 */
import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';

export type BandwidthMode = 'copy' | 'read';

const BYTES = 256 * 1024 * 1024;
const ROUNDS = 4;
const READ_STREAMS = 8;

/** Unsigned and signed LEB128, WebAssembly's integer encodings. */
function leb(n: number): number[] {
  const out: number[] = [];
  do {
    let byte = n & 0x7f;
    n >>>= 7;
    if (n) byte |= 0x80;
    out.push(byte);
  } while (n);
  return out;
}

function sleb(n: number): number[] {
  const out: number[] = [];
  for (;;) {
    const byte = n & 0x7f;
    n >>= 7;
    const done = (n === 0 && !(byte & 0x40)) || (n === -1 && byte & 0x40);
    out.push(done ? byte : byte | 0x80);
    if (done) return out;
  }
}

/**
 * A module importing memory m.mem and exporting read(base, stride, bytes) -> i32: for i in
 * [0, bytes) step 64 it XORs the 64 bytes at base + k * stride + i into an accumulator for k in
 * 0..streams-1, and returns a lane of it (so no load is dead code).
 */
export function readStreamsModule(streams: number): Uint8Array<ArrayBuffer> {
  const [BASE, STRIDE, END, I, P, ACC] = [0, 1, 2, 3, 4, 5];
  const get = (l: number) => [0x20, l];
  const set = (l: number) => [0x21, l];
  // Locals: i and p (i32), acc (v128); then one loop.
  const body = [0x02, 0x02, 0x7f, 0x01, 0x7b, 0x03, 0x40];
  for (let k = 0; k < streams; k++) {
    body.push(...get(BASE), ...get(I), 0x6a); // base + i
    if (k) body.push(...get(STRIDE), 0x41, ...sleb(k), 0x6c, 0x6a); // + stride * k
    body.push(...set(P));
    for (let offset = 0; offset < 64; offset += 16) {
      // acc ^= v128.load(p + offset), 16-byte aligned
      body.push(...get(ACC), ...get(P), 0xfd, 0x00, 4, ...leb(offset), 0xfd, 0x51, ...set(ACC));
    }
  }
  // i += 64; continue while i < bytes; then return lane 0 of acc.
  body.push(...get(I), 0x41, ...sleb(64), 0x6a, 0x22, I, ...get(END), 0x49, 0x0d, 0, 0x0b);
  body.push(...get(ACC), 0xfd, 0x1b, 0, 0x0b);
  const section = (id: number, bytes: number[]) => [id, ...leb(bytes.length), ...bytes];
  const name = (s: string) => [s.length, ...Buffer.from(s)];
  return new Uint8Array([
    ...[0x00, 0x61, 0x73, 0x6d, 1, 0, 0, 0],
    ...section(1, [1, 0x60, 3, 0x7f, 0x7f, 0x7f, 1, 0x7f]), // (i32, i32, i32) -> i32
    ...section(2, [1, ...name('m'), ...name('mem'), 0x02, 0x00, 1]), // memory, at least 1 page
    ...section(3, [1, 0]),
    ...section(7, [1, ...name('read'), 0x00, 0]),
    ...section(10, [1, ...leb(body.length), ...body]),
  ]);
}

const WORKER = `
  const { parentPort, workerData } = require('node:worker_threads');
  const { mode, bytes, rounds, streams, module } = workerData;
  let once;
  if (mode === 'copy') {
    const src = Buffer.alloc(bytes, 1), dst = Buffer.alloc(bytes);
    once = () => src.copy(dst);
  } else {
    const mem = new WebAssembly.Memory({ initial: bytes / 65536 });
    new Uint8Array(mem.buffer).fill(1);
    const { read } = new WebAssembly.Instance(new WebAssembly.Module(module), { m: { mem } }).exports;
    const stride = bytes / streams;
    once = () => read(0, stride, stride);
  }
  once(); // touch the pages before timing
  parentPort.postMessage('ready');
  parentPort.once('message', () => {
    const t = process.hrtime.bigint();
    for (let r = 0; r < rounds; r++) once();
    parentPort.postMessage(Number(process.hrtime.bigint() - t) / 1e9);
  });`;

export async function measureBandwidth(mode: BandwidthMode): Promise<number> {
  const threads = Math.max(1, availableParallelism());
  const workerData = {
    mode,
    bytes: BYTES,
    rounds: ROUNDS,
    streams: READ_STREAMS,
    module: readStreamsModule(READ_STREAMS),
  };
  const workers = Array.from(
    { length: threads },
    () => new Worker(WORKER, { eval: true, workerData }),
  );
  try {
    await Promise.all(
      workers.map(
        (w) =>
          new Promise((resolve, reject) => {
            w.once('message', resolve);
            w.once('error', reject);
          }),
      ),
    );
    const start = process.hrtime.bigint();
    await Promise.all(
      workers.map((w) => {
        const done = new Promise((resolve) => w.once('message', resolve));
        w.postMessage('go');
        return done;
      }),
    );
    const seconds = Number(process.hrtime.bigint() - start) / 1e9;
    const bytesPerRound = mode === 'copy' ? 2 * BYTES : BYTES;
    return (bytesPerRound * ROUNDS * threads) / seconds;
  } finally {
    await Promise.all(workers.map((w) => w.terminate()));
  }
}
