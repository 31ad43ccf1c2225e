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
