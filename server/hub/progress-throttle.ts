/**
 * Limits progress reports to one per interval per file. A file's first and last reports always
 * pass, and a report held back is sent when the interval ends, so a stalled transfer still
 * shows the bytes it really has.
 */
import type { DownloadProgress } from './pull-model';

export function throttleProgress(
  report: (progress: DownloadProgress) => void,
  intervalMs = 250,
  now: () => number = Date.now,
): (progress: DownloadProgress) => void {
  let lastFile = '';
  let lastAt = -Infinity;
  let held: DownloadProgress | undefined;
  let timer: NodeJS.Timeout | undefined;
  const send = (progress: DownloadProgress) => {
    clearTimeout(timer);
    timer = undefined;
    held = undefined;
    lastFile = progress.file;
    lastAt = now();
    report(progress);
  };
  return (progress) => {
    const finished = progress.bytes === progress.total;
    if (progress.file !== lastFile || finished || now() - lastAt >= intervalMs)
      return send(progress);
    held = progress;
    timer ??= setTimeout(() => held && send(held), lastAt + intervalMs - now()).unref();
  };
}
