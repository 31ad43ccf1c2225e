/** Words for the panel's progress line: what is happening, with the numbers that matter. */
import type { ProgressStage } from '../../src/protocol/panel';

export interface ProgressView {
  text: string;
  /** 0..100 for a determinate bar, undefined for an indeterminate one. */
  percent?: number;
}

function rate(tokensPerSecond: number): string {
  return `${tokensPerSecond.toFixed(tokensPerSecond < 10 ? 1 : 0)} tok/s`;
}

export function describeProgress(progress: ProgressStage): ProgressView {
  switch (progress.stage) {
    case 'startingServer':
      return { text: 'Starting the local model server…' };
    case 'downloading': {
      const what = progress.file ? ` (${progress.file})` : '';
      return {
        text: `Downloading the model${what}: ${Math.floor(progress.percent)}%`,
        percent: progress.percent,
      };
    }
    case 'building': {
      const what = progress.item ? ` (${progress.item})` : '';
      return {
        text: `Preparing the model for this machine${what}: ${Math.floor(progress.percent)}%`,
        percent: progress.percent,
      };
    }
    case 'readingImage':
      if (progress.percent === undefined) return { text: 'Reading the image…' };
      return {
        text: `Reading the ${progress.reading ?? 'image'}: ${Math.floor(progress.percent)}%`,
        percent: progress.percent,
      };
    case 'generating':
      return {
        text:
          progress.tokens === 0
            ? 'Generating…'
            : `Generating: ${progress.tokens} tokens at ${rate(progress.tokensPerSecond)}`,
      };
  }
}

export function describeDone(tokens: number, tokensPerSecond: number): string {
  return `Done: ${tokens} tokens at ${rate(tokensPerSecond)}.`;
}
