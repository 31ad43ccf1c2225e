/**
 * Messages between the Design to Code panel webview and the extension host. Types only (plus
 * the validators in ./validate.ts), imported by both sides so that a message cannot drift.
 * Every message that arrives from a webview is validated before use.
 */
import type { Target } from './targets';

/** The largest image the panel accepts (the webview refuses bigger ones before posting). */
export const MAX_IMAGE_BYTES = 20 * 1024 * 1024;

/** Image formats the panel accepts: what the model's image reader decodes, plus SVG. */
export const IMAGE_MIME_TYPES = [
  'image/png',
  'image/jpeg',
  'image/webp',
  'image/gif',
  'image/svg+xml',
] as const;
export type ImageMimeType = (typeof IMAGE_MIME_TYPES)[number];

/** Image types by file extension, for files whose MIME type is unknown (or not given). */
export const IMAGE_MIME_BY_EXTENSION: Record<string, ImageMimeType> = {
  png: 'image/png',
  jpg: 'image/jpeg',
  jpeg: 'image/jpeg',
  webp: 'image/webp',
  gif: 'image/gif',
  svg: 'image/svg+xml',
};

/** The longest instruction the panel sends. */
export const MAX_INSTRUCTION_CHARS = 4000;

/**
 * The request the panel expects next, for the local server to read ahead
 * (GenerationApi.readAhead): a generation from the panel's image, or a refinement of the last
 * result.
 */
export type NextRequest =
  | { kind: 'generate'; target: Target; instruction: string }
  | { kind: 'refine'; instruction: string };

/** An image the user pasted, dropped or picked, as base64 of the encoded file. */
export interface ImagePayload {
  name: string;
  mimeType: ImageMimeType;
  base64: string;
}

export type PanelToHost =
  | { type: 'ready' }
  | { type: 'imageChosen'; image: ImagePayload }
  | { type: 'pickFile' }
  | {
      type: 'generate';
      requestId: string;
      image: ImagePayload;
      target: Target;
      instruction: string;
    }
  | { type: 'refine'; requestId: string; instruction: string }
  /** What Generate or Refine would send now, for the local server to read ahead. */
  | { type: 'readAhead'; next: NextRequest }
  | { type: 'stop'; requestId: string }
  | { type: 'useEmbeddedDiagram' }
  | { type: 'openHistory'; historyId: string }
  | { type: 'runAction'; action: ErrorAction };

/** Actions an error can offer; each runs a command in the host. */
export type ErrorAction =
  | 'downloadModel'
  | 'showLog'
  | 'openSettings'
  | 'restartServer'
  | 'setApiKey'
  | 'startServer'
  | 'chooseModel';

export type ProgressStage =
  | { stage: 'startingServer' }
  | { stage: 'downloading'; file?: string; percent: number }
  | { stage: 'building'; item?: string; percent: number }
  /**
   * Before the first token. The local server says how far it is (`reading`, `percent`): the
   * image's vision tower, then the prompt's tokens.
   */
  | { stage: 'readingImage'; reading?: 'image' | 'prompt'; percent?: number }
  | { stage: 'generating'; tokens: number; tokensPerSecond: number };

export interface HistoryEntry {
  id: string;
  createdAt: number;
  target: Target;
  instruction: string;
  /** A small data: URL thumbnail of the source image. */
  thumbnail: string;
  /** First line or title of the result, for the list. */
  summary: string;
}

export type HostToPanel =
  | { type: 'init'; defaultTarget: Target; history: HistoryEntry[]; backend: string }
  /** `chosen`: the user just chose it (not a replay to a reloaded webview). */
  | { type: 'image'; image: ImagePayload; embeddedDiagram: boolean; chosen: boolean }
  | { type: 'progress'; requestId: string; progress: ProgressStage }
  | { type: 'done'; requestId: string; tokens: number; tokensPerSecond: number; warnings: string[] }
  | { type: 'stopped'; requestId: string }
  | { type: 'error'; requestId?: string; message: string; actions: ErrorAction[] }
  | { type: 'history'; history: HistoryEntry[] }
  /** Puts keyboard focus where Ctrl/Cmd+V pastes an image. */
  | { type: 'focusPaste' }
  /**
   * The local server reads the generation ahead ('reading'), has read it all ('read': Generate
   * starts at once), or stopped without it ('idle').
   */
  /** While reading: how far the server has read the image, then the prompt (`percent`). */
  | {
      type: 'readAhead';
      state: 'reading' | 'read' | 'idle';
      reading?: 'image' | 'prompt';
      percent?: number;
    };
