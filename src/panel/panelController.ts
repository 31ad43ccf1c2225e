/**
 * What the panel's messages do: each validated message becomes a call on the GenerationApi,
 * and its progress, result or error goes back to the panel. Keeps the state a reloaded
 * webview needs again (the image, the running request and its last progress).
 */
import * as vscode from 'vscode';
import {
  GenerationError,
  type HostDependencies,
  type ReadAheadRequest,
  type SourceImage,
} from '../generation/api';
import { readingProgress } from '../generation/readingProgress';
import type { HostToPanel, PanelToHost, ProgressStage } from '../protocol/panel';
import { decodeImage, encodeImage, readImageFile, IMAGE_FILE_EXTENSIONS } from './images';

export type PostToPanel = (message: HostToPanel) => void;

export class PanelController {
  private image?: SourceImage;
  private running?: { requestId: string; progress?: ProgressStage };
  /** How the last request ended, replayed once to a webview that was reloaded meanwhile. */
  private outcome?: HostToPanel;
  /** Generation read-aheads not yet settled (the panel shows while any is being read). */
  private readingAhead = 0;
  /** The panel says Generate starts at once (the last read-ahead was read). */
  private readAheadShown = false;

  private readonly dropped: vscode.Disposable;

  constructor(
    private readonly deps: HostDependencies,
    private readonly post: PostToPanel,
    private readonly log: Pick<vscode.LogOutputChannel, 'error'>,
  ) {
    this.dropped = deps.api.onDidDropReadAheads(() => this.readAheadsDropped());
  }

  dispose(): void {
    this.dropped.dispose();
  }

  /**
   * An image the user chose, in the panel or another way (a command, the explorer); `chosen`
   * false: the same image shown again to a reloaded webview.
   */
  showImage(image: SourceImage, chosen = true): void {
    this.image = image;
    this.post({
      type: 'image',
      image: encodeImage(image),
      embeddedDiagram: this.hasDiagram(image),
      chosen,
    });
  }

  async handle(message: PanelToHost): Promise<void> {
    switch (message.type) {
      case 'ready':
        return this.sendState();
      case 'imageChosen':
        return this.showImage(decodeImage(message.image));
      case 'pickFile':
        return this.guard(undefined, () => this.pickFile());
      case 'generate': {
        const image = decodeImage(message.image);
        this.image = image;
        const { requestId, target, instruction } = message;
        const request = { requestId, image, target, instruction };
        return this.run(message.requestId, (onProgress) =>
          this.deps.api.generate(request, onProgress),
        );
      }
      case 'refine':
        return this.run(message.requestId, (onProgress) =>
          this.deps.api.refine(
            { requestId: message.requestId, instruction: message.instruction },
            onProgress,
          ),
        );
      case 'readAhead': {
        // Only ever a head start: Generate and Refine work the same without it.
        const { next } = message;
        if (next.kind === 'refine') return void this.deps.api.readAhead(next);
        if (this.image) return this.readGenerationAhead({ ...next, image: this.image });
        return;
      }
      case 'stop':
        return this.deps.api.stop(message.requestId);
      case 'useEmbeddedDiagram':
        return this.guard(undefined, async () => {
          if (!this.image) throw new GenerationError('Paste or choose an image first.', []);
          await this.deps.api.openEmbeddedDiagram(this.image);
        });
      case 'openHistory':
        return this.guard(undefined, () => this.deps.api.openHistory(message.historyId));
      case 'runAction':
        return this.guard(undefined, () => this.deps.api.runAction(message.action));
    }
  }

  /** Reads a generation ahead, telling the panel while any is being read and how the last ended. */
  private async readGenerationAhead(request: ReadAheadRequest): Promise<void> {
    let reading = false;
    const read = await this.deps.api.readAhead(
      request,
      () => {
        reading = true;
        if (this.readingAhead++ === 0) this.post({ type: 'readAhead', state: 'reading' });
      },
      (progress) =>
        this.post({ type: 'readAhead', state: 'reading', ...readingProgress(progress) }),
    );
    if (reading && --this.readingAhead === 0) {
      this.readAheadShown = read;
      this.post({ type: 'readAhead', state: read ? 'read' : 'idle' });
    }
  }

  /** The server stopped: Generate no longer starts at once, so the panel stops saying it does. */
  private readAheadsDropped(): void {
    if (!this.readAheadShown) return;
    this.readAheadShown = false;
    this.post({ type: 'readAhead', state: 'idle' });
  }

  sendHistory(): void {
    this.post({ type: 'history', history: this.deps.api.history() });
  }

  private sendState(): void {
    const { settings, api } = this.deps;
    this.post({
      type: 'init',
      defaultTarget: settings.defaultTarget(),
      history: api.history(),
      backend: settings.backendLabel(),
    });
    if (this.image) this.showImage(this.image, false);
    const running = this.running;
    if (running?.progress) {
      this.post({ type: 'progress', requestId: running.requestId, progress: running.progress });
    } else if (!running && this.outcome) {
      this.post(this.outcome);
      this.outcome = undefined;
    }
  }

  private hasDiagram(image: SourceImage): boolean {
    try {
      return this.deps.api.embeddedDiagram(image) !== undefined;
    } catch (error) {
      this.log.error(`Looking for an embedded Draw.io diagram in ${image.name} failed:`, error);
      return false;
    }
  }

  private async pickFile(): Promise<void> {
    const [uri] =
      (await vscode.window.showOpenDialog({
        canSelectMany: false,
        openLabel: 'Use image',
        filters: { Images: IMAGE_FILE_EXTENSIONS },
      })) ?? [];
    if (uri) this.showImage(await readImageFile(uri));
  }

  private async run(
    requestId: string,
    start: (
      onProgress: (progress: ProgressStage) => void,
    ) => ReturnType<HostDependencies['api']['generate']>,
  ): Promise<void> {
    this.running = { requestId };
    this.outcome = undefined;
    this.readAheadShown = false; // the status now follows this request
    await this.guard(requestId, async () => {
      const result = await start((progress) => {
        if (this.running?.requestId === requestId) this.running.progress = progress;
        this.post({ type: 'progress', requestId, progress });
      });
      const { tokens, tokensPerSecond, warnings } = result;
      this.finish(
        result.outcome === 'stopped'
          ? { type: 'stopped', requestId }
          : { type: 'done', requestId, tokens, tokensPerSecond, warnings },
      );
    });
    if (this.running?.requestId === requestId) this.running = undefined;
  }

  private finish(outcome: HostToPanel): void {
    this.outcome = outcome;
    this.post(outcome);
  }

  /** Runs an action; any failure is shown in the panel with the actions that fix it. */
  private async guard(requestId: string | undefined, action: () => Promise<void>): Promise<void> {
    try {
      await action();
    } catch (error) {
      const known = error instanceof GenerationError;
      if (!known) this.log.error('Design to Code panel:', error);
      const failure: HostToPanel = {
        type: 'error',
        requestId,
        message: error instanceof Error ? error.message : String(error),
        actions: known ? error.actions : ['showLog'],
      };
      // A failed generation is an outcome to replay; a failed side action is not.
      if (requestId) this.finish(failure);
      else this.post(failure);
    }
  }
}
