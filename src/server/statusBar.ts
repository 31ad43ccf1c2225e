/**
 * The status bar item: model, device, server state and the last generation's tokens/s.
 * A click opens a menu with the log, restart, stop and settings.
 */
import * as vscode from 'vscode';
import type { SettingsService } from '../settings/settings';
import { Disposable } from '../util/disposable';
import type { ServerState, ServerSupervisor } from './supervisor';

const ICONS: Record<ServerState, string> = {
  stopped: '$(circle-outline)',
  starting: '$(loading~spin)',
  ready: '$(check)',
  restarting: '$(sync~spin)',
  failed: '$(error)',
};

export const STATUS_MENU_COMMAND = 'designToCode.serverMenu';

export class ServerStatusBar extends Disposable {
  private readonly item = this.register(
    vscode.window.createStatusBarItem('designToCode.server', vscode.StatusBarAlignment.Right, 100),
  );
  private tokensPerSecond: number | undefined;
  private generating = false;

  constructor(
    private readonly supervisor: ServerSupervisor,
    private readonly settings: SettingsService,
  ) {
    super();
    this.item.name = 'Design to Code';
    this.item.command = STATUS_MENU_COMMAND;
    this.register(supervisor.onDidChangeState(() => this.render()));
    this.register(settings.onDidChange(() => this.render()));
    this.render();
    this.item.show();
  }

  setGenerating(generating: boolean, tokensPerSecond?: number): void {
    this.generating = generating;
    if (tokensPerSecond !== undefined) this.tokensPerSecond = tokensPerSecond;
    this.render();
  }

  private render(): void {
    void vscode.commands.executeCommand(
      'setContext',
      'designToCode.serverState',
      this.supervisor.state,
    );
    void vscode.commands.executeCommand('setContext', 'designToCode.generating', this.generating);
    const settings = this.settings.read();
    const speed =
      this.tokensPerSecond === undefined ? '' : ` · ${this.tokensPerSecond.toFixed(1)} tok/s`;
    if (settings.backend !== 'local') {
      const icon = this.generating ? '$(loading~spin)' : '$(cloud)';
      this.item.text = `${icon} ${shortModel(settings.model)}${speed}`;
      this.item.tooltip = `Design to Code: ${settings.model} at ${settings.endpoint}`;
      this.item.backgroundColor = undefined;
      return;
    }
    const state = this.supervisor.state;
    const info = this.supervisor.info;
    const icon = this.generating ? '$(loading~spin)' : ICONS[state];
    const device = info ? ` · ${info.device}` : '';
    this.item.text = `${icon} ${shortModel(info?.model ?? settings.model)}${device} · ${state}${speed}`;
    const unloaded =
      state === 'stopped' && this.supervisor.unloadedIdle
        ? ` (unloaded after ${settings.unloadAfterMinutes} min unused: it loads again when you choose an image or generate)`
        : '';
    this.item.tooltip = `Design to Code local server: ${state}${unloaded}${info ? ` (${info.endpoint})` : ''}. Click for actions.`;
    this.item.backgroundColor =
      state === 'failed' ? new vscode.ThemeColor('statusBarItem.errorBackground') : undefined;
  }
}

function shortModel(model: string): string {
  const parts = model.split(/[\\/]/).filter(Boolean);
  return parts[parts.length - 1] ?? model;
}

/** The menu behind the status bar item. */
export async function showServerMenu(supervisor: ServerSupervisor): Promise<void> {
  const running = supervisor.state === 'ready' || supervisor.state === 'starting';
  const items: (vscode.QuickPickItem & { command: string })[] = [
    { label: '$(output) Show Server Log', command: 'designToCode.showServerLog' },
    { label: '$(debug-restart) Restart Server', command: 'designToCode.restartServer' },
    running
      ? { label: '$(debug-stop) Stop Server', command: 'designToCode.stopServer' }
      : { label: '$(play) Start Server', command: 'designToCode.startServer' },
    { label: '$(library) Choose Model…', command: 'designToCode.chooseModel' },
    { label: '$(settings-gear) Open Settings', command: 'workbench.action.openSettings' },
  ];
  const choice = await vscode.window.showQuickPick(items, { title: 'Design to Code' });
  if (!choice) return;
  if (choice.command === 'workbench.action.openSettings') {
    await vscode.commands.executeCommand(choice.command, '@ext:design-to-code.design-to-code');
  } else {
    await vscode.commands.executeCommand(choice.command);
  }
}
