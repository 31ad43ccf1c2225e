/**
 * The local server's stdout protocol: one JSON object per line, a single "ready" line once it
 * listens and "progress" lines while it downloads, builds or loads the model.
 */
import type { ProgressStage } from '../protocol/panel';

export interface ReadyEvent {
  event: 'ready';
  port: number;
  device: string;
  model: string;
}

export interface ProgressEvent {
  event: 'progress';
  stage: 'download' | 'build' | 'load';
  file?: string;
  item?: string;
  bytes?: number;
  total?: number;
  /** Download: bytes of the whole model so far and its size. */
  overallBytes?: number;
  overallTotal?: number;
  /** Build and load: steps done of total. */
  done?: number;
  percent?: number;
  message?: string;
}

/** The server could not start (printed instead of "ready"); its log has the details. */
export interface ErrorEvent {
  event: 'error';
  code: string;
  message: string;
}

export type ServerEvent = ReadyEvent | ProgressEvent | ErrorEvent;

/** Parses one stdout line; anything that is not a known event is undefined (logged by the caller). */
export function parseServerLine(line: string): ServerEvent | undefined {
  const trimmed = line.trim();
  if (!trimmed.startsWith('{')) return undefined;
  let value: Record<string, unknown>;
  try {
    value = JSON.parse(trimmed) as Record<string, unknown>;
  } catch {
    return undefined;
  }
  if (value['event'] === 'ready') {
    const port = value['port'];
    if (typeof port !== 'number' || !Number.isInteger(port) || port <= 0 || port > 65535)
      return undefined;
    return {
      event: 'ready',
      port,
      device: typeof value['device'] === 'string' ? value['device'] : 'unknown',
      model: typeof value['model'] === 'string' ? value['model'] : 'unknown',
    };
  }
  if (value['event'] === 'error') {
    return {
      event: 'error',
      code: typeof value['code'] === 'string' ? value['code'] : 'internal',
      message: typeof value['message'] === 'string' ? value['message'] : 'unknown error',
    };
  }
  if (
    value['event'] === 'progress' &&
    ['download', 'build', 'load'].includes(value['stage'] as string)
  ) {
    return value as unknown as ProgressEvent;
  }
  return undefined;
}

/** Percent done of a progress event, from `percent` or `bytes`/`total`, when known. */
export function progressPercent(event: ProgressEvent): number | undefined {
  const ratio = (part: unknown, whole: unknown): number | undefined =>
    typeof part === 'number' && typeof whole === 'number' && whole > 0
      ? Math.max(0, Math.min(100, (100 * part) / whole))
      : undefined;
  if (typeof event.percent === 'number') return Math.max(0, Math.min(100, event.percent));
  return (
    ratio(event.overallBytes, event.overallTotal) ??
    ratio(event.bytes, event.total) ??
    ratio(event.done, event.total)
  );
}

/** The panel's view of a progress event. */
export function toProgressStage(event: ProgressEvent): ProgressStage {
  const percent = progressPercent(event) ?? 0;
  if (event.stage === 'download') return { stage: 'downloading', file: event.file, percent };
  if (event.stage === 'build')
    return { stage: 'building', item: event.item ?? event.file, percent };
  return { stage: 'startingServer' };
}

/** A one-line description for VS Code's progress notification. */
export function describeProgress(event: ProgressEvent): string {
  const percent = progressPercent(event);
  const amount = percent === undefined ? '' : ` ${percent.toFixed(0)}%`;
  const what = event.file ?? event.item ?? event.message ?? '';
  const label = { download: 'Downloading model', build: 'Building model', load: 'Loading model' }[
    event.stage
  ];
  return `${label}${amount}${what ? ` (${what})` : ''}`;
}

/** Splits a byte stream into lines, keeping a partial last line for the next chunk. */
export class LineSplitter {
  private rest = '';
  push(chunk: string): string[] {
    const text = this.rest + chunk;
    const lines = text.split(/\r?\n/);
    this.rest = lines.pop() ?? '';
    return lines;
  }
  flush(): string[] {
    const last = this.rest;
    this.rest = '';
    return last ? [last] : [];
  }
}
