/**
 * One generation at a time: connects to the backend, streams the model's reply into the
 * editor as code, then puts the final formatted code in place and records it in the history.
 * Implements the GenerationApi the panel and preview hosts call.
 */
import * as vscode from 'vscode';
import { connect } from '../backend/connection';
import { embeddedDiagram } from '../drawio/embedded';
import { offerDiagram, promptSave } from '../drawio/openDiagram';
import { toDrawioDocument } from '../drawio/wrap';
import { showGeneratedDocument } from '../layout/editorGroups';
import { streamChatCompletion } from '../openai/client';
import { ChatFailure } from '../openai/errors';
import type { ErrorAction, HistoryEntry, ProgressStage } from '../protocol/panel';
import { TARGETS, type Target } from '../protocol/targets';
import type { ApiKeyStore } from '../secrets/apiKey';
import type { SettingsService } from '../settings/settings';
import type { ServerStatusBar } from '../server/statusBar';
import type { ServerSupervisor } from '../server/supervisor';
import { Disposable } from '../util/disposable';
import {
  GenerationError,
  type GenerateRequest,
  type GenerationApi,
  type GenerationResult,
  type GenerationStart,
  type ProgressListener,
  type ReadAheadRequest,
  type RefineRequest,
  type SourceImage,
} from './api';
import { EditorStream, openStreamTarget, type StreamTarget } from './editorStream';
import { DecodeRate } from './decodeRate';
import { extractCode } from './extractCode';
import { ACTION_COMMANDS, toGenerationError } from './failures';
import { finalizeReply } from './finalize';
import { HistoryStore, type HistoryRecord } from './history';
import { type ModelReply, modelTurn, refinementOf } from './conversation';
import { FENCE_BY_TARGET, generationMessages, imageDataUrl } from './prompts';
import { imageKey, ReadAheadQueue } from './readAheadQueue';
import { readingProgress } from './readingProgress';
import type { ChatMessage, PromptProgress } from '../openai/types';

interface Running {
  requestId: string;
  abort: AbortController;
}

/**
 * Where the generated code lies in its document's `text`: where `code` is, when the document
 * holds more; else the whole document (the code as the user left it).
 */
function rangeOf(text: string, code: string): { start: number; text: string } {
  const at = text.indexOf(code);
  return at >= 0 && text.length !== code.length ? { start: at, text: code } : { start: 0, text };
}

/** A finished run: its result, the code it left, and the model's reply as it wrote it. */
interface RunOutcome extends ModelReply {
  result: GenerationResult;
}

interface Job {
  requestId: string;
  target: Target;
  formatAs?: GenerateRequest['formatAs'];
  image: SourceImage;
  messages: ChatMessage[];
  /** Opens where the code goes; called when the first code arrives. */
  openTarget: () => Promise<StreamTarget>;
  onProgress: ProgressListener;
}

export class GenerationController extends Disposable implements GenerationApi {
  private current: Running | undefined;
  private readonly readAheads = new ReadAheadQueue((messages, signal, onProgress) =>
    this.sendReadAhead(messages, signal, onProgress),
  );
  private readonly sources = new Map<string, { image: SourceImage; historyId?: string }>();
  private readonly startEmitter = this.register(new vscode.EventEmitter<GenerationStart>());
  readonly onDidStartGeneration = this.startEmitter.event;
  private readonly dropEmitter = this.register(new vscode.EventEmitter<void>());
  readonly onDidDropReadAheads = this.dropEmitter.event;
  readonly onDidChangeHistory: vscode.Event<HistoryEntry[]>;
  private lastHistoryId: string | undefined;
  /** The last focused text editor: the panel takes focus, yet "at the cursor" means this one. */
  private lastEditor: vscode.TextEditor | undefined = vscode.window.activeTextEditor;

  constructor(
    private readonly settings: SettingsService,
    private readonly supervisor: ServerSupervisor,
    private readonly keys: ApiKeyStore,
    private readonly historyStore: HistoryStore,
    private readonly statusBar: ServerStatusBar,
  ) {
    super();
    this.register(historyStore);
    this.register({ dispose: () => this.readAheads.dispose() });
    this.register(
      vscode.window.onDidChangeActiveTextEditor((editor) => {
        if (editor) this.lastEditor = editor;
      }),
    );
    // Source images are kept for open documents only (the history keeps them on disk).
    this.register(
      vscode.workspace.onDidCloseTextDocument((document) =>
        this.sources.delete(document.uri.toString()),
      ),
    );
    // A server that stops takes its KV cache along: nothing read ahead is left.
    this.register(
      supervisor.onDidChangeState((state) => {
        if (state !== 'ready' && state !== 'starting') this.dropEmitter.fire();
      }),
    );
    this.onDidChangeHistory = historyStore.onDidChange;
    if (historyStore.records().length > 0) {
      void vscode.commands.executeCommand('setContext', 'designToCode.hasResult', true);
    }
  }

  get running(): boolean {
    return this.current !== undefined;
  }

  history(): HistoryEntry[] {
    return this.historyStore.entries();
  }

  async generate(
    request: GenerateRequest,
    onProgress: ProgressListener,
  ): Promise<GenerationResult> {
    const settings = this.settings.read();
    const editor = vscode.window.activeTextEditor ?? this.lastEditor;
    const messages = generationMessages(
      request.target,
      imageDataUrl(request.image.bytes, request.image.mimeType),
      request.instruction,
    );
    return this.run(request.requestId, onProgress, async () => ({
      requestId: request.requestId,
      target: request.target,
      formatAs: request.formatAs,
      image: request.image,
      messages,
      openTarget: () =>
        openStreamTarget(
          TARGETS[request.target].languageId,
          request.insertMode ?? settings.insertMode,
          editor && !editor.document.isClosed ? editor : undefined,
        ),
      onProgress,
    })).then(async (outcome) => {
      if (outcome.result.outcome === 'done') {
        const { record, imageNotSaved } = await this.historyStore.add({
          target: request.target,
          instruction: request.instruction,
          image: request.image,
          code: outcome.code,
          conversation: {
            instruction: request.instruction,
            turns: [modelTurn(outcome, FENCE_BY_TARGET[request.target])],
          },
          languageId: TARGETS[request.target].languageId,
        });
        this.rememberSource(outcome.result.documentUri, request.image, record.id);
        outcome.result.historyId = record.id;
        if (imageNotSaved) {
          const warning =
            `The image could not be saved with the history (${imageNotSaved}): this result ` +
            'can be refined until VS Code closes. Free some disk space to keep the next ones.';
          outcome.result.warnings.push(warning);
          void vscode.window.showWarningMessage(`Design to Code: ${warning}`);
        }
      }
      return outcome.result;
    });
  }

  async refine(request: RefineRequest, onProgress: ProgressListener): Promise<GenerationResult> {
    const record = this.recordToRefine(request.historyId);
    if (!record) {
      throw new GenerationError(
        'There is no earlier generation to refine. Generate code from an image first.',
        [],
      );
    }
    if (!request.instruction.trim()) {
      throw new GenerationError(
        'Say how the code should change, e.g. "make the header sticky".',
        [],
      );
    }
    const image = await this.historyStore.image(record).then(
      (found) => found,
      () => {
        throw new GenerationError(
          'The source image of this generation is gone from the history storage.',
          [],
        );
      },
    );
    const streamTarget = await this.refineTarget(record.id, record.code, record.languageId);
    const current = streamTarget.document.getText(
      new vscode.Range(
        streamTarget.document.positionAt(streamTarget.start),
        streamTarget.document.positionAt(streamTarget.start + streamTarget.length),
      ),
    );
    const fence = FENCE_BY_TARGET[record.target];
    const { earlier, messages } = refinementOf(record, image, current, request.instruction);
    const outcome = await this.run(request.requestId, onProgress, async () => ({
      requestId: request.requestId,
      target: record.target,
      image,
      messages,
      openTarget: async () => streamTarget,
      onProgress,
    }));
    outcome.result.historyId = record.id;
    if (outcome.result.outcome === 'done') {
      await this.historyStore.updateCode(
        record.id,
        outcome.code,
        `${record.instruction}\n${request.instruction}`.trim(),
        {
          instruction: earlier.instruction,
          turns: [...earlier.turns, messages.at(-1)!, modelTurn(outcome, fence)],
        },
      );
      this.rememberSource(outcome.result.documentUri, image, record.id);
    }
    return outcome.result;
  }

  async readAhead(
    request: ReadAheadRequest,
    onReading?: () => void,
    onProgress?: (progress: PromptProgress) => void,
  ): Promise<boolean> {
    // The server starts now if it is not running (the session's first image, or a refinement
    // typed after the model was unloaded while idle), while the user chooses and types.
    if (this.readAheadOn() && !this.current) {
      await this.supervisor.prestart();
    }
    if (!this.canReadAhead()) return false;
    const prompt = await this.readAheadPrompt(request).catch(() => undefined);
    if (!prompt || !this.canReadAhead()) return false;
    onReading?.();
    return this.readAheads.request(prompt.image, prompt.messages, onProgress);
  }

  expectUse(): void {
    if (this.readAheadOn() && !this.current) void this.supervisor.reloadIfUnloaded();
  }

  /** Only the local server reads a prompt without answering (max_tokens 0), when the user lets it. */
  private readAheadOn(): boolean {
    const settings = this.settings.read();
    return settings.readAhead && settings.backend === 'local';
  }

  /** Whether a prompt can be read ahead now: allowed, the server ready, no generation running. */
  private canReadAhead(): boolean {
    return (
      this.readAheadOn() &&
      !this.current &&
      this.supervisor.state === 'ready' &&
      this.supervisor.info !== undefined
    );
  }

  /** The messages Generate or Refine would send for `request`, and their image's key. */
  private async readAheadPrompt(
    request: ReadAheadRequest,
  ): Promise<{ image: string; messages: ChatMessage[] } | undefined> {
    if (request.kind === 'generate') {
      const { image, target, instruction } = request;
      const url = imageDataUrl(image.bytes, image.mimeType);
      return {
        image: imageKey(image.bytes),
        messages: generationMessages(target, url, instruction),
      };
    }
    const record = this.recordToRefine(request.historyId);
    if (!record || !request.instruction.trim()) return undefined;
    const image = await this.historyStore.image(record);
    const document = this.generatedDocument(record.id);
    const current = document ? rangeOf(document.getText(), record.code).text : '';
    const { messages } = refinementOf(record, image, current, request.instruction);
    return { image: imageKey(image.bytes), messages };
  }

  private async sendReadAhead(
    messages: ChatMessage[],
    signal: AbortSignal,
    onProgress?: (progress: PromptProgress) => void,
  ): Promise<void> {
    const server = this.supervisor.info;
    if (!server || !this.canReadAhead()) throw new Error('the server cannot read ahead now');
    const hold = this.supervisor.hold();
    try {
      await streamChatCompletion({
        endpoint: server.endpoint,
        apiKey: server.token,
        local: true,
        signal,
        request: { model: server.model, messages, max_tokens: 0 },
        onDelta: () => undefined,
        onPromptProgress: onProgress,
      });
    } finally {
      hold.dispose();
    }
  }

  /** The generation a refinement continues: the one asked for, else the latest. */
  private recordToRefine(historyId?: string): HistoryRecord | undefined {
    const id = historyId ?? this.lastHistoryId ?? this.history()[0]?.id;
    return id ? this.historyStore.get(id) : undefined;
  }

  /** The open document a generation streamed into, if it is still open. */
  private generatedDocument(historyId: string): vscode.TextDocument | undefined {
    for (const [uri, source] of this.sources) {
      if (source.historyId !== historyId) continue;
      const document = vscode.workspace.textDocuments.find(
        (candidate) => candidate.uri.toString() === uri,
      );
      if (document && !document.isClosed) return document;
    }
    return undefined;
  }

  /** The document (and range) a refinement rewrites: the generated one when it is still open. */
  private async refineTarget(
    historyId: string,
    code: string,
    languageId: string,
  ): Promise<StreamTarget> {
    const document = this.generatedDocument(historyId);
    if (!document) return openStreamTarget(languageId, 'new-document', undefined);
    await showGeneratedDocument(document);
    const { start, text } = rangeOf(document.getText(), code);
    return { document, start, length: text.length };
  }

  stop(requestId?: string): void {
    if (!this.current || (requestId && requestId !== this.current.requestId)) return;
    this.current.abort.abort();
  }

  private async run(
    requestId: string,
    onProgress: ProgressListener,
    prepare: () => Promise<Job>,
  ): Promise<RunOutcome> {
    if (this.current) {
      throw new GenerationError(
        'A generation is already running. Stop it first, or wait for it to finish.',
        [],
      );
    }
    const abort = new AbortController();
    this.current = { requestId, abort };
    let crashed = false;
    const crashWatch = this.supervisor.onDidCrash(() => (crashed = true));
    // The model stays loaded while this runs, however long it takes.
    const hold = this.supervisor.hold();
    this.statusBar.setGenerating(true);
    let stream: EditorStream | undefined;
    try {
      const settings = this.settings.read();
      const connection = await connect(settings, this.supervisor, this.keys, onProgress).catch(
        (error: unknown) => {
          throw toGenerationError(error, false);
        },
      );
      if (abort.signal.aborted) {
        const result: GenerationResult = {
          requestId,
          outcome: 'stopped',
          tokens: 0,
          tokensPerSecond: 0,
          warnings: [],
          documentUri: '',
          historyId: '',
        };
        return { code: '', reply: '', complete: false, result };
      }
      onProgress({ stage: 'readingImage' });
      const job = await prepare();
      // Hashing the image is only worth it when a read-ahead is in flight or waiting.
      if (this.readAheads.busy) this.readAheads.settle(imageKey(job.image.bytes));
      let documentUri = '';
      stream = new EditorStream(job.openTarget, (document) => {
        documentUri = document.uri.toString();
        this.rememberSource(documentUri, job.image, this.sources.get(documentUri)?.historyId);
        this.startEmitter.fire({ documentUri, image: job.image, target: job.target });
      });

      let reply = '';
      const rate = new DecodeRate();
      let tokensPerSecond = 0;
      let tokens = 0;
      let finishReason: string | undefined;
      try {
        const stats = await streamChatCompletion({
          endpoint: connection.endpoint,
          apiKey: connection.apiKey,
          local: connection.local,
          signal: abort.signal,
          request: {
            model: connection.model,
            messages: job.messages,
            max_tokens: settings.maxTokens,
            temperature: settings.temperature,
            top_p: settings.topP,
          },
          onPromptProgress: (progress) =>
            job.onProgress({ stage: 'readingImage', ...readingProgress(progress) }),
          onDelta: (delta, progress) => {
            reply += delta;
            tokens = progress.tokens;
            tokensPerSecond = rate.update(progress.tokens);
            stream!.update(extractCode(reply, job.target, false).code);
            job.onProgress({ stage: 'generating', tokens, tokensPerSecond });
          },
        });
        tokens = stats.tokens;
        finishReason = stats.finishReason;
        tokensPerSecond = rate.update(stats.tokens);
      } catch (error) {
        // Stopped or failed: the text already inserted stays, as one undo step.
        await stream.finish(undefined).catch(() => undefined);
        if (error instanceof ChatFailure && error.kind === 'aborted') {
          return {
            code: stream.document?.getText() ?? '',
            reply,
            complete: false,
            result: {
              requestId,
              outcome: 'stopped',
              tokens,
              tokensPerSecond,
              warnings: [],
              documentUri,
              historyId: '',
            },
          };
        }
        if (connection.local && error instanceof ChatFailure && !crashed) {
          crashed = await this.supervisor.crashedWithin(1500);
        }
        throw toGenerationError(error, crashed);
      }

      const final = await finalizeReply(reply, job.target, job.formatAs, {
        finishReason,
        maxTokens: settings.maxTokens,
      });
      await stream.finish(final.code);
      this.statusBar.setGenerating(false, tokensPerSecond);
      if (job.target === 'drawio' && final.warnings.length === 0 && stream.document) {
        void promptSave(stream.document, 'The diagram is ready.');
      }
      if (final.warnings.length > 0) {
        void vscode.window.showWarningMessage(`Design to Code: ${final.warnings.join(' ')}`);
      }
      return {
        code: final.code,
        reply,
        complete: finishReason !== 'length',
        result: {
          requestId,
          outcome: 'done',
          tokens,
          tokensPerSecond,
          warnings: final.warnings,
          documentUri,
          historyId: '',
        },
      };
    } catch (error) {
      throw toGenerationError(error, crashed);
    } finally {
      stream?.dispose();
      crashWatch.dispose();
      hold.dispose();
      this.statusBar.setGenerating(false);
      this.current = undefined;
    }
  }

  private rememberSource(documentUri: string, image: SourceImage, historyId?: string): void {
    this.sources.set(documentUri, { image, historyId });
    if (historyId) this.lastHistoryId = historyId;
    if (historyId)
      void vscode.commands.executeCommand('setContext', 'designToCode.hasResult', true);
  }

  sourceImageFor(documentUri: string): SourceImage | undefined {
    return this.sources.get(documentUri)?.image;
  }

  async openHistory(historyId: string): Promise<void> {
    const record = this.historyStore.get(historyId);
    if (!record) throw new GenerationError('That generation is no longer in the history.', []);
    const document = await vscode.workspace.openTextDocument({
      language: record.languageId,
      content: record.code,
    });
    await showGeneratedDocument(document);
    const image = await this.historyStore.image(record).catch(() => undefined);
    if (image) this.rememberSource(document.uri.toString(), image, record.id);
    else this.lastHistoryId = record.id;
  }

  embeddedDiagram(image: SourceImage): string | undefined {
    return embeddedDiagram(image.bytes, image.mimeType);
  }

  async openEmbeddedDiagram(image: SourceImage): Promise<void> {
    const xml = this.embeddedDiagram(image);
    if (!xml) throw new GenerationError('This image carries no Draw.io diagram.', []);
    const document = toDrawioDocument(xml);
    const opened = await offerDiagram(
      document.xml,
      'The image carries its Draw.io diagram; it is open as XML.',
    );
    this.rememberSource(opened.uri.toString(), image);
  }

  async runAction(action: ErrorAction): Promise<void> {
    await vscode.commands.executeCommand(ACTION_COMMANDS[action]);
  }
}
