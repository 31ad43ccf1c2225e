/**
 * The Design to Code panel's webview: one panel, created on demand and reused, restored by a
 * serializer after a window reload. Every message from the webview is validated before the
 * PanelController sees it.
 */
import * as vscode from 'vscode';
import type { HostDependencies, PanelHandle, SourceImage } from '../generation/api';
import { PANEL_VIEW_TYPE } from '../layout/viewTypes';
import type { HostToPanel } from '../protocol/panel';
import { validatePanelMessage } from '../protocol/validate';
import { Disposable } from '../util/disposable';
import { PanelController } from './panelController';
import { bundledWebviewPage, setPanelIcon, webviewOptions } from './webviewHost';

type Log = Pick<vscode.LogOutputChannel, 'error'>;

export class DesignPanel extends Disposable implements PanelHandle {
  private panel?: vscode.WebviewPanel;
  private panelSubscriptions: vscode.Disposable[] = [];
  /** Whether the webview listens; what is posted before is dropped, and `ready` resends state. */
  private ready = false;
  /** Focus asked for before the webview was ready. */
  private focusOnReady = false;
  private readonly controller: PanelController;

  constructor(
    private readonly extensionUri: vscode.Uri,
    private readonly deps: HostDependencies,
    private readonly log: Log,
  ) {
    super();
    this.controller = new PanelController(deps, (message) => this.post(message), log);
    this.register(deps.api.onDidChangeHistory(() => this.controller.sendHistory()));
    this.register(this.controller);
    this.register(vscode.window.registerWebviewPanelSerializer(PANEL_VIEW_TYPE, this));
    this.register({ dispose: () => this.panel?.dispose() });
  }

  show(options: { focusPaste?: boolean; image?: SourceImage } = {}): void {
    if (this.panel) this.panel.reveal(undefined, false);
    else {
      const panel = vscode.window.createWebviewPanel(
        PANEL_VIEW_TYPE,
        'Design to Code',
        vscode.ViewColumn.Active,
        webviewOptions(this.extensionUri),
      );
      this.attach(panel);
    }
    if (options.image) this.controller.showImage(options.image);
    if (options.focusPaste) {
      if (this.ready) this.post({ type: 'focusPaste' });
      else this.focusOnReady = true;
    }
  }

  /** Called by VS Code after a window reload for a panel that was open. */
  async deserializeWebviewPanel(panel: vscode.WebviewPanel): Promise<void> {
    panel.webview.options = webviewOptions(this.extensionUri);
    this.attach(panel);
  }

  private attach(panel: vscode.WebviewPanel): void {
    this.panel?.dispose();
    this.panel = panel;
    this.ready = false;
    setPanelIcon(panel, this.extensionUri);
    const webview = panel.webview;
    webview.html = bundledWebviewPage(webview, this.extensionUri, 'panel', {
      title: 'Design to Code',
    });
    this.panelSubscriptions = [
      webview.onDidReceiveMessage((data: unknown) => this.receive(data)),
      // A hidden webview is unloaded; it posts `ready` again when shown.
      panel.onDidChangeViewState(() => {
        if (!panel.visible) this.ready = false;
        // The user turned to the panel: a model unloaded while idle loads while they decide.
        if (panel.active) this.deps.api.expectUse();
      }),
      panel.onDidDispose(() => {
        if (this.panel !== panel) return;
        this.panel = undefined;
        for (const subscription of this.panelSubscriptions.splice(0)) subscription.dispose();
      }),
    ];
  }

  private receive(data: unknown): void {
    const result = validatePanelMessage(data);
    if (!result.ok) {
      this.log.error(`Rejected a message from the Design to Code panel: ${result.error}`);
      this.post({
        type: 'error',
        message: `The panel sent a message the extension cannot accept: ${result.error}`,
        actions: ['showLog'],
      });
      return;
    }
    const message = result.value;
    if (message.type === 'ready') this.ready = true;
    this.controller
      .handle(message)
      .then(() => {
        if (message.type === 'ready' && this.focusOnReady) {
          this.focusOnReady = false;
          this.post({ type: 'focusPaste' });
        }
      })
      .catch((error: unknown) => this.log.error('Design to Code panel:', error));
  }

  private post(message: HostToPanel): void {
    // Before `ready` the webview has no listener; `ready` makes the controller resend state.
    if (this.panel && this.ready) void this.panel.webview.postMessage(message);
  }
}
