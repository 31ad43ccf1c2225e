/** Limits progress reports to one per interval per file, always letting a file's last one through. */
import type { DownloadProgress } from './pull-model';

export function throttleProgress(
  report: (progress: DownloadProgress) => void,
  intervalMs = 250,
  now: () => number = Date.now,
): (progress: DownloadProgress) => void {
  let lastFile = '';
  let lastAt = -Infinity;
  return (progress) => {
    const finished = progress.bytes === progress.total;
    if (progress.file === lastFile && !finished && now() - lastAt < intervalMs) return;
    lastFile = progress.file;
    lastAt = now();
    report(progress);
  };
}
