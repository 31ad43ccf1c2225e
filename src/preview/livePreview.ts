/**
 * The live preview beside the editor: renders the tracked HTML or Draw.io document, updates
 * while code streams in and on every edit, and shows the image the document came from.
 * Pages run their own scripts only when the user allows it (then from the PageServer).
 */
import { readFile } from 'node:fs/promises';
import * as vscode from 'vscode';
import type { HostDependencies, PreviewHandle, SourceImage } from '../generation/api';
import type { HostToPreview, PreviewContent } from '../protocol/preview';
import { validatePreviewMessage } from '../protocol/validate';
import {
  bundledWebviewPage,
  extensionResourceUri,
  setPanelIcon,
  webviewOptions,
} from '../panel/webviewHost';
import { Disposable } from '../util/disposable';
import { previewColumn } from '../layout/editorGroups';
import { PREVIEW_VIEW_TYPE } from '../layout/viewTypes';
import { PageServer } from './pageServer';
import { previewCspAdditions } from './previewCsp';
import { expectedPreviewKind, previewKindOf } from './previewKind';
import { inlineTailwind, referencesTailwind } from './tailwind';

/** At most one render per this many milliseconds while text streams in or is typed. */
const UPDATE_INTERVAL_MS = 200;

type Log = Pick<vscode.LogOutputChannel, 'error' | 'warn'>;

export class LivePreview extends Disposable implements PreviewHandle {
  private panel?: vscode.WebviewPanel;
  private panelSubscriptions: vscode.Disposable[] = [];
  private document?: vscode.TextDocument;
  private ready = false;
  private updateTimer?: ReturnType<typeof setTimeout>;
  private server?: Promise<{ server: PageServer; origin: string; url: string }>;
  private revision = 0;
  /** Whether the loaded page's CSP lets the page server's frame in. */
  private scriptsAllowed = false;
  private lastFailure?: string;
  /** Documents generated for the Tailwind target: previewed with Tailwind even without its tag. */
  private readonly tailwindDocuments = new Set<string>();
  private tailwindIndexCss?: Promise<string>;
  /** Renders are async (Tailwind, page server): only the latest one is posted. */
  private renderSequence = 0;

  constructor(
    private readonly extensionUri: vscode.Uri,
    private readonly deps: HostDependencies,
    private readonly log: Log,
  ) {
    super();
    this.register(vscode.window.registerWebviewPanelSerializer(PREVIEW_VIEW_TYPE, this));
    this.register(vscode.workspace.onDidChangeTextDocument((event) => this.onEdit(event)));
    this.register(vscode.window.onDidChangeActiveTextEditor((editor) => this.follow(editor)));
    this.register(
      vscode.workspace.onDidCloseTextDocument((document) => {
        this.tailwindDocuments.delete(document.uri.toString());
        if (document === this.document) void this.render();
      }),
    );
    this.register(deps.settings.onDidChange(() => this.onSettingsChanged()));
    this.register(
      deps.api.onDidStartGeneration(({ documentUri, target }) => {
        if (target === 'tailwind') this.tailwindDocuments.add(documentUri);
        else this.tailwindDocuments.delete(documentUri);
        this.onGenerationStart(documentUri);
      }),
    );
    this.register({
      dispose: () => {
        clearTimeout(this.updateTimer);
        this.panel?.dispose();
        void this.server?.then(({ server }) => server.close());
      },
    });
  }

  show(documentUri?: string): void {
    const document = documentUri
      ? this.findDocument(documentUri)
      : vscode.window.activeTextEditor?.document;
    if (!document || !expectedPreviewKind(document)) {
      void vscode.window.showInformationMessage(
        'The live preview shows HTML documents and Draw.io diagrams: open one first.',
      );
      return;
    }
    this.open(document);
  }

  private findDocument(uri: string): vscode.TextDocument | undefined {
    return vscode.workspace.textDocuments.find((document) => document.uri.toString() === uri);
  }

  /** An open preview follows a new generation; a closed one opens if the settings say so. */
  private onGenerationStart(documentUri: string): void {
    const document = this.findDocument(documentUri);
    if (!document || !expectedPreviewKind(document)) return;
    if (this.panel || this.deps.settings.previewAutoOpen()) this.open(document);
  }

  private open(document: vscode.TextDocument): void {
    this.document = document;
    if (this.panel) {
      this.panel.reveal(undefined, true);
      this.sendAll();
    } else {
      const panel = vscode.window.createWebviewPanel(
        PREVIEW_VIEW_TYPE,
        'Preview',
        { viewColumn: previewColumn(document), preserveFocus: true },
        webviewOptions(this.extensionUri),
      );
      this.attach(panel);
    }
  }

  /** Called by VS Code after a window reload: previews the active document again. */
  async deserializeWebviewPanel(panel: vscode.WebviewPanel): Promise<void> {
    const document = vscode.window.activeTextEditor?.document;
    if (document && previewKindOf(document)) this.document = document;
    panel.webview.options = webviewOptions(this.extensionUri);
    this.attach(panel);
  }

  private attach(panel: vscode.WebviewPanel): void {
    this.panel?.dispose();
    this.panel = panel;
    setPanelIcon(panel, this.extensionUri);
    this.panelSubscriptions = [
      panel.webview.onDidReceiveMessage((data: unknown) => this.receive(data)),
      panel.onDidChangeViewState(() => {
        if (!panel.visible) this.ready = false;
      }),
      panel.onDidDispose(() => {
        if (this.panel !== panel) return;
        this.panel = undefined;
        this.ready = false;
        for (const subscription of this.panelSubscriptions.splice(0)) subscription.dispose();
        // Nothing shows served pages any more: free the loopback port until the next preview.
        const pageServer = this.server;
        this.server = undefined;
        void pageServer?.then(({ server }) => server.close()).catch(() => undefined);
      }),
    ];
    void this.loadPage(panel);
  }

  private onSettingsChanged(): void {
    if (this.panel && this.deps.settings.previewAllowScripts() !== this.scriptsAllowed) {
      void this.loadPage(this.panel);
    }
  }

  /** (Re)loads the webview's page; its CSP depends on whether page scripts are allowed. */
  private async loadPage(panel: vscode.WebviewPanel): Promise<void> {
    this.ready = false;
    this.scriptsAllowed = this.deps.settings.previewAllowScripts();
    const webview = panel.webview;
    const frameSources: string[] = [];
    if (this.scriptsAllowed) {
      try {
        frameSources.push((await this.pageServer()).origin);
      } catch (error) {
        this.log.error('The preview page server did not start:', error);
      }
    }
    if (this.panel !== panel) return;
    const drawioBase = extensionResourceUri(
      webview,
      this.extensionUri,
      'dist',
      'webview',
      'drawio',
    );
    webview.html = bundledWebviewPage(webview, this.extensionUri, 'preview', {
      title: 'Preview',
      additions: previewCspAdditions(frameSources),
      data: { 'drawio-base': drawioBase },
    });
  }

  private pageServer(): Promise<{ server: PageServer; origin: string; url: string }> {
    this.server ??= PageServer.start().then(async (server) => {
      const external = await vscode.env.asExternalUri(vscode.Uri.parse(server.url));
      const url = external.toString(true);
      return { server, url, origin: new URL(url).origin };
    });
    const starting = this.server;
    starting.catch(() => {
      if (this.server === starting) this.server = undefined;
    });
    return starting;
  }

  private receive(data: unknown): void {
    const result = validatePreviewMessage(data);
    if (!result.ok) {
      this.log.error(`Rejected a message from the preview: ${result.error}`);
      return;
    }
    const message = result.value;
    if (message.type === 'ready') {
      this.ready = true;
      this.sendAll();
    } else {
      this.warnOnce(message.message);
    }
  }

  /** Streaming code is incomplete until it ends: log each distinct reason once. */
  private warnOnce(reason: string): void {
    if (reason === this.lastFailure) return;
    this.lastFailure = reason;
    this.log.warn(`The preview could not render ${this.document?.fileName}: ${reason}`);
  }

  private follow(editor: vscode.TextEditor | undefined): void {
    if (!this.panel || !editor || editor.document === this.document) return;
    if (!previewKindOf(editor.document)) return;
    this.document = editor.document;
    this.sendAll();
  }

  private onEdit(event: vscode.TextDocumentChangeEvent): void {
    if (!this.panel || event.document !== this.document || this.updateTimer) return;
    this.updateTimer = setTimeout(() => {
      this.updateTimer = undefined;
      void this.render();
    }, UPDATE_INTERVAL_MS);
  }

  private sendAll(): void {
    void this.render();
    const uri = this.document?.uri.toString();
    this.sendImage(uri ? this.deps.api.sourceImageFor(uri) : undefined);
  }

  private sendImage(image: SourceImage | undefined): void {
    const dataUrl = (source: SourceImage) =>
      `data:${source.mimeType};base64,${Buffer.from(source.bytes).toString('base64')}`;
    this.post({
      type: 'sourceImage',
      image: image ? { name: image.name, dataUrl: dataUrl(image) } : null,
    });
  }

  private async render(): Promise<void> {
    const document = this.document;
    if (!this.panel || !this.ready) return;
    const title = document ? document.fileName.split(/[\\/]/).pop()! : 'Preview';
    const sequence = ++this.renderSequence;
    const content = await this.contentOf(document);
    if (sequence !== this.renderSequence || !this.panel) return;
    this.panel.title = `Preview: ${title}`;
    this.post({ type: 'render', title, content });
  }

  private async contentOf(document: vscode.TextDocument | undefined): Promise<PreviewContent> {
    if (!document || document.isClosed) {
      return { kind: 'empty', message: 'Open an HTML document or a Draw.io diagram.' };
    }
    const text = document.getText();
    const name = document.fileName.split(/[\\/]/).pop();
    if (text.trim() === '') {
      return { kind: 'empty', message: `${name} is empty: the preview follows as code arrives.` };
    }
    const kind = expectedPreviewKind(document);
    if (kind === undefined) {
      return {
        kind: 'empty',
        message: `${name} is neither an HTML document nor a Draw.io diagram.`,
      };
    }
    if (kind === 'drawio') return { kind: 'drawio', xml: text };
    const html = await this.withTailwind(document, text);
    if (!this.scriptsAllowed) return { kind: 'html', html };
    try {
      const { server, url } = await this.pageServer();
      server.setPage(html);
      return { kind: 'served', url, revision: ++this.revision };
    } catch (error) {
      this.log.error('The preview page server did not start:', error);
      return { kind: 'html', html };
    }
  }

  /**
   * A Tailwind page with its CSS compiled here in place of the CDN script the preview cannot
   * load (see ./tailwind.ts for why on the host); other pages as they are.
   */
  private async withTailwind(document: vscode.TextDocument, text: string): Promise<string> {
    if (!referencesTailwind(text) && !this.tailwindDocuments.has(document.uri.toString())) {
      return text;
    }
    try {
      this.tailwindIndexCss ??= readFile(
        vscode.Uri.joinPath(this.extensionUri, 'dist', 'tailwind', 'index.css').fsPath,
        'utf8',
      );
      const inlined = await inlineTailwind(text, await this.tailwindIndexCss);
      if (inlined.warning) this.warnOnce(inlined.warning);
      return inlined.html;
    } catch (error) {
      this.tailwindIndexCss = undefined;
      this.warnOnce(`Tailwind could not be compiled: ${String(error)}`);
      return text;
    }
  }

  private post(message: HostToPreview): void {
    if (this.panel && this.ready) void this.panel.webview.postMessage(message);
  }
}
