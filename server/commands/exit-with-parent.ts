/**
 * Ends this process when the process that started it is gone, even while the main thread is blocked (a
 * synchronous model build, or its wait for another builder's lock): a watchdog thread polls the
 * parent and kills the process. The build cache removes what a killed build leaves behind.
 */
import { Worker } from 'node:worker_threads';

const WATCHDOG = `
const { workerData } = require('node:worker_threads');
const check = () => {
  try {
    process.kill(workerData.parent, 0);
  } catch (error) {
    if (error.code === 'ESRCH') process.kill(workerData.self, 'SIGKILL');
  }
};
check();
setInterval(check, workerData.intervalMs);
`;

/**
 * `parent` is the pid the parent passed in, not process.ppid: a parent killed before this
 * process got here has already been replaced by init (or a subreaper) as the ppid.
 */
export function exitWithParent(parent: number, intervalMs = 250): void {
  const worker = new Worker(WATCHDOG, {
    eval: true,
    workerData: { parent, self: process.pid, intervalMs },
  });
  // The watchdog must not keep a finished build alive.
  worker.unref();
}
