/** The panel feature's entry point for the composition root (src/extension.ts). */
import * as vscode from 'vscode';
import type { HostDependencies, PanelHandle } from '../generation/api';
import { DesignPanel } from './designPanel';

/**
 * Creates the panel feature and registers its serializer. `log` receives rejected webview
 * messages and unexpected failures (the console when omitted).
 */
export function registerPanel(
  context: vscode.ExtensionContext,
  deps: HostDependencies,
  log: Pick<vscode.LogOutputChannel, 'error'> = console,
): PanelHandle {
  return new DesignPanel(context.extensionUri, deps, log);
}
