/**
 * Ends a child process and everything it started: a polite signal first, then a kill after a
 * grace period. On POSIX the child leads its own process group (spawned detached), so the
 * whole group is signalled; on Windows taskkill /T walks the tree.
 */
import { spawn, type ChildProcess } from 'node:child_process';

function signalTree(pid: number, signal: NodeJS.Signals): void {
  if (process.platform === 'win32') {
    spawn('taskkill', ['/pid', String(pid), '/T', ...(signal === 'SIGKILL' ? ['/F'] : [])], {
      stdio: 'ignore',
      windowsHide: true,
    }).on('error', () => undefined);
    return;
  }
  try {
    process.kill(-pid, signal);
  } catch {
    try {
      process.kill(pid, signal);
    } catch {
      // Already gone.
    }
  }
}

/** Resolves once the child has exited (at the latest after the grace period plus a kill). */
export function killTree(child: ChildProcess, graceMs: number): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null || child.pid === undefined) {
    return Promise.resolve();
  }
  const pid = child.pid;
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      signalTree(pid, 'SIGKILL');
      // Give the OS a moment to report the exit; never hang the caller.
      setTimeout(resolve, 1000).unref();
    }, graceMs);
    child.once('exit', () => {
      clearTimeout(timer);
      resolve();
    });
    // The server exits when its stdin closes; a signal covers a child that is stuck.
    child.stdin?.end();
    signalTree(pid, 'SIGTERM');
  });
}
