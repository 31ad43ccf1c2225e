// Finds processes by their command line (Linux /proc), to reach the extension's server
// child the way a crash would: from outside, by pid.
import { readdirSync, readFileSync } from 'node:fs';

export interface ProcessInfo {
  pid: number;
  commandLine: string;
}

export function findProcesses(matches: (commandLine: string) => boolean): ProcessInfo[] {
  const found: ProcessInfo[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const commandLine = readFileSync(`/proc/${entry}/cmdline`, 'utf8')
        .split('\0')
        .join(' ')
        .trim();
      if (commandLine && matches(commandLine)) found.push({ pid: Number(entry), commandLine });
    } catch {
      // exited while we read
    }
  }
  return found;
}

/**
 * Whether `pid` runs. A zombie (dead, not yet reaped: some containers have no init that reaps
 * orphans) counts as gone; without /proc (macOS) signal 0 succeeding is the best answer.
 */
export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2)[0] !== 'Z';
  } catch {
    return true;
  }
}
