/**
 * What the panel and the preview webviews share on the host side: which extension folders
 * they may load from, their tab icon, the webview URIs of extension files, and their page.
 */
import * as vscode from 'vscode';
import { makeNonce, webviewPage, type WebviewPageOptions } from './webviewPage';

/** Scripts on; local resources limited to the bundled webview scripts and the media folder. */
export function webviewOptions(
  extensionUri: vscode.Uri,
): vscode.WebviewPanelOptions & vscode.WebviewOptions {
  return {
    enableScripts: true,
    localResourceRoots: [
      vscode.Uri.joinPath(extensionUri, 'dist', 'webview'),
      vscode.Uri.joinPath(extensionUri, 'media'),
    ],
  };
}

export function setPanelIcon(panel: vscode.WebviewPanel, extensionUri: vscode.Uri): void {
  panel.iconPath = vscode.Uri.joinPath(extensionUri, 'media', 'icon.png');
}

/** The URI string the webview loads a file of the extension from. */
export function extensionResourceUri(
  webview: vscode.Webview,
  extensionUri: vscode.Uri,
  ...path: string[]
): string {
  return webview.asWebviewUri(vscode.Uri.joinPath(extensionUri, ...path)).toString();
}

/**
 * The page of the `name` webview: its bundle dist/webview/<name>.js, the shared stylesheet
 * and its own (media/<name>.css), under a fresh nonce.
 */
export function bundledWebviewPage(
  webview: vscode.Webview,
  extensionUri: vscode.Uri,
  name: 'panel' | 'preview',
  page: Pick<WebviewPageOptions, 'title' | 'additions' | 'data'>,
): string {
  const asUri = (...path: string[]) => extensionResourceUri(webview, extensionUri, ...path);
  return webviewPage({
    ...page,
    cspSource: webview.cspSource,
    nonce: makeNonce(),
    scriptUri: asUri('dist', 'webview', `${name}.js`),
    styleUris: [asUri('media', 'webview.css'), asUri('media', `${name}.css`)],
  });
}
