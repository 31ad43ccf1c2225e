/**
 * What the panel and the preview webviews share on the host side: which extension folders
 * they may load from, their tab icon, and the webview URIs of extension files.
 */
import * as vscode from 'vscode';

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

/** Maps a path inside the extension to the URI string the webview loads it from. */
export function extensionResourceUris(
  webview: vscode.Webview,
  extensionUri: vscode.Uri,
): (...path: string[]) => string {
  return (...path) => webview.asWebviewUri(vscode.Uri.joinPath(extensionUri, ...path)).toString();
}
