/**
 * The API the panel host (src/panel/**) and the preview host (src/preview/**) call. The
 * GenerationController in ./controller.ts implements it; the composition root
 * (src/extension.ts) constructs it and hands it to `registerPanel` / `registerPreview`.
 */
import type * as vscode from 'vscode';
import type { ErrorAction, HistoryEntry, ProgressStage } from '../protocol/panel';
import type { Target } from '../protocol/targets';
import type { PromptProgress } from '../openai/types';

/** The source image as decoded bytes (the panel decodes ImagePayload.base64). */
export interface SourceImage {
  bytes: Uint8Array;
  mimeType: string;
  name: string;
}

export interface GenerateRequest {
  /** Chosen by the caller; echoed in progress and used by stop(). */
  requestId: string;
  image: SourceImage;
  target: Target;
  /** Optional extra instruction from the user ('' for none). */
  instruction: string;
  /** Where the code goes; the insertMode setting when omitted. */
  insertMode?: 'new-document' | 'cursor' | 'replace-selection';
  /** Format the result as this language (e.g. 'css' when pasting into a stylesheet). */
  formatAs?: 'html' | 'css' | 'javascript' | 'javascriptreact';
}

export interface RefineRequest {
  requestId: string;
  instruction: string;
  /** Which earlier generation to refine; the most recent one when omitted. */
  historyId?: string;
}

/** A request to read ahead: Generate's without its id and output options, or Refine's. */
export type ReadAheadRequest =
  | ({ kind: 'generate' } & Pick<GenerateRequest, 'image' | 'target' | 'instruction'>)
  | ({ kind: 'refine' } & Omit<RefineRequest, 'requestId'>);

export interface GenerationResult {
  requestId: string;
  /** 'stopped' when stop() ended it: the text already inserted stays. */
  outcome: 'done' | 'stopped';
  tokens: number;
  tokensPerSecond: number;
  /** Formatting or Draw.io validation problems; the code was still inserted. */
  warnings: string[];
  /** The document that received the code. */
  documentUri: string;
  historyId: string;
}

/** Every failure reaches callers as this: a message for people and the actions that fix it. */
export class GenerationError extends Error {
  constructor(
    message: string,
    readonly actions: ErrorAction[],
    readonly code: string = 'generation',
  ) {
    super(message);
    this.name = 'GenerationError';
  }
}

export interface GenerationStart {
  documentUri: string;
  image: SourceImage;
  target: Target;
}

export type ProgressListener = (progress: ProgressStage) => void;

/** What the panel and preview hosts may call. */
export interface GenerationApi {
  /** One generation at a time: a second call while one runs rejects with GenerationError. */
  generate(request: GenerateRequest, onProgress: ProgressListener): Promise<GenerationResult>;
  /** Continues the conversation of an earlier generation and updates its document in place. */
  refine(request: RefineRequest, onProgress: ProgressListener): Promise<GenerationResult>;
  /**
   * Before Generate or Refine is pressed (an image chosen, an instruction typed): has the local
   * server read that request's prompt into its KV cache, so that it then runs only its last
   * token. Does nothing unless the local server is up and no generation runs; never fails (the
   * request works the same without). `onReading`: when the prompt goes to the server;
   * `onProgress`: how far the server has read it. Resolves true once the server has read it.
   */
  readAhead(
    request: ReadAheadRequest,
    onReading?: () => void,
    onProgress?: (progress: PromptProgress) => void,
  ): Promise<boolean>;
  /** Fires when prompts read ahead are gone: the local server stopped (unloaded, crashed, stopped). */
  readonly onDidDropReadAheads: vscode.Event<void>;
  /**
   * The user turned to the panel: a local model unloaded while idle starts loading again now
   * (where reading ahead is on), as choosing an image would, so that it is back by the time they
   * press Generate or Refine. Does nothing otherwise; never fails.
   */
  expectUse(): void;
  /** Stops the running generation (any, or only the one with this id). */
  stop(requestId?: string): void;
  readonly running: boolean;

  /** Recent generations, newest first. */
  history(): HistoryEntry[];
  readonly onDidChangeHistory: vscode.Event<HistoryEntry[]>;
  /** Reopens the code of an earlier generation in a new editor. */
  openHistory(historyId: string): Promise<void>;

  /** The diagram XML a draw.io PNG/SVG export carries, if any (no inference). */
  embeddedDiagram(image: SourceImage): string | undefined;
  /** Opens the embedded diagram as a .drawio document (in the Draw.io editor when installed). */
  openEmbeddedDiagram(image: SourceImage): Promise<void>;

  /** The image a document was generated from (for the preview's overlay), if known. */
  sourceImageFor(documentUri: string): SourceImage | undefined;
  /** Fires when a generation starts streaming into a document (and says for which target). */
  readonly onDidStartGeneration: vscode.Event<GenerationStart>;

  /** Runs the command behind an error action (Download model, Show log, ...). */
  runAction(action: ErrorAction): Promise<void>;
}

/** Settings the webview hosts need, read fresh on each call. */
export interface HostSettings {
  defaultTarget(): Target;
  backendLabel(): string;
  previewAutoOpen(): boolean;
  previewAllowScripts(): boolean;
  readonly onDidChange: vscode.Event<void>;
}

/**
 * What src/panel/index.ts and src/preview/index.ts are expected to export:
 *   export function registerPanel(context: vscode.ExtensionContext, deps: HostDependencies): PanelHandle;
 *   export function registerPreview(context: vscode.ExtensionContext, deps: HostDependencies): PreviewHandle;
 * Both handles are disposed by the composition root.
 */
export interface HostDependencies {
  api: GenerationApi;
  settings: HostSettings;
}

export interface PanelHandle extends vscode.Disposable {
  /** Creates or reveals the panel; `focusPaste` puts focus where Ctrl/Cmd+V pastes an image. */
  show(options?: { focusPaste?: boolean; image?: SourceImage }): void;
}

export interface PreviewHandle extends vscode.Disposable {
  /** Opens the live preview beside the editor for this document (the active one by default). */
  show(documentUri?: string): void;
}
