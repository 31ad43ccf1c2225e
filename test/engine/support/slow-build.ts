/**
 * A separate process for the build-cache concurrency test: builds one cache entry slowly with
 * ensureBuild, notes in a log file when it really builds, and prints whether it built.
 * Usage: node --require tsx/cjs slow-build.ts CACHE_DIR LOG_FILE
 */
import { appendFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ensureBuild } from '../../../server/engine/runtime/build-cache';

const [cacheDir, logFile] = process.argv.slice(2);
const result = ensureBuild(cacheDir, 'samekey', 'fp32', 1, (dir) => {
  appendFileSync(logFile, `build by ${process.pid}\n`);
  writeFileSync(join(dir, 'vision.onnx'), 'vision');
  // Long enough for the other process to arrive while this one builds.
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 1500);
  writeFileSync(join(dir, 'decoder.onnx'), 'decoder');
});
process.stdout.write(JSON.stringify({ built: result.built }));
