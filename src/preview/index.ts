/** The live preview feature's entry point for the composition root (src/extension.ts). */
import type * as vscode from 'vscode';
import type { HostDependencies, PreviewHandle } from '../generation/api';
import { LivePreview } from './livePreview';

/**
 * Creates the live preview and registers its serializer. `log` receives rejected webview
 * messages and render failures (the console when omitted).
 */
export function registerPreview(
  context: vscode.ExtensionContext,
  deps: HostDependencies,
  log: Pick<vscode.LogOutputChannel, 'error' | 'warn'> = console,
): PreviewHandle {
  return new LivePreview(context.extensionUri, deps, log);
}
