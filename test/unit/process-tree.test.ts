import { strict as assert } from 'node:assert';
import { spawn } from 'node:child_process';
import { killTree } from '../../src/server/processTree';
import { isAlive } from '../harness/processes';

// A server stuck in native code ignores SIGTERM and a closed stdin; so does the process it
// started. Both must be gone once killTree resolves, the kill coming after the grace period.
const STUBBORN = `
  process.on('SIGTERM', () => {});
  const { spawn } = require('node:child_process');
  const grandchild = spawn(process.execPath, ['-e', "process.on('SIGTERM', () => {}); setInterval(() => {}, 1000)"], { stdio: 'ignore' });
  console.log(grandchild.pid);
  setInterval(() => {}, 1000);
`;

describe('killTree', function () {
  if (process.platform === 'win32') return;

  it('ends a child that ignores SIGTERM, and its own child, after the grace period', async () => {
    const child = spawn(process.execPath, ['-e', STUBBORN], {
      stdio: ['pipe', 'pipe', 'inherit'],
      detached: true,
    });
    const grandchildPid = await new Promise<number>((resolve) =>
      child.stdout!.once('data', (chunk: Buffer) => resolve(Number(String(chunk).trim()))),
    );
    try {
      assert.ok(isAlive(grandchildPid));
      const started = Date.now();
      await killTree(child, 300);
      assert.ok(Date.now() - started >= 300, 'the kill waits for the grace period');
      assert.notEqual(child.signalCode ?? child.exitCode, null, 'the child has exited');
      for (let i = 0; i < 50 && isAlive(grandchildPid); i++) {
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
      assert.equal(isAlive(grandchildPid), false, 'the grandchild is gone too');
    } finally {
      try {
        process.kill(-child.pid!, 'SIGKILL');
      } catch {
        // Already gone.
      }
    }
  });
});
