/**
 * Saving and opening .drawio documents: in the Draw.io editor (hediet.vscode-drawio) when
 * that extension is installed, else as XML in a text editor.
 */
import * as vscode from 'vscode';
import { showGeneratedDocument } from '../layout/editorGroups';

export const DRAWIO_EXTENSION_ID = 'hediet.vscode-drawio';
const DRAWIO_EDITOR_VIEW_TYPE = 'hediet.vscode-drawio-text';

export function drawioEditorInstalled(): boolean {
  return vscode.extensions.getExtension(DRAWIO_EXTENSION_ID) !== undefined;
}

/** Opens a .drawio file in the Draw.io editor when available, else as text. */
export async function openDrawioFile(uri: vscode.Uri): Promise<void> {
  if (drawioEditorInstalled()) {
    try {
      await vscode.commands.executeCommand('vscode.openWith', uri, DRAWIO_EDITOR_VIEW_TYPE);
      return;
    } catch {
      // Fall through to the text editor.
    }
  }
  await vscode.window.showTextDocument(uri, { preview: false });
}

/** Asks where to save `xml` as a .drawio file, writes it, and opens it. */
export async function saveDrawio(
  xml: string,
  suggestedName = 'diagram.drawio',
): Promise<vscode.Uri | undefined> {
  const folder = vscode.workspace.workspaceFolders?.[0]?.uri;
  const uri = await vscode.window.showSaveDialog({
    title: 'Save the diagram as a .drawio file',
    defaultUri: folder ? vscode.Uri.joinPath(folder, suggestedName) : undefined,
    filters: { 'Draw.io diagram': ['drawio'] },
  });
  if (!uri) return undefined;
  await vscode.workspace.fs.writeFile(uri, Buffer.from(xml, 'utf8'));
  await openDrawioFile(uri);
  return uri;
}

/** Opens diagram XML as an untitled XML document, then offers to save it as .drawio. */
export async function offerDiagram(xml: string, message: string): Promise<vscode.TextDocument> {
  const document = await vscode.workspace.openTextDocument({ language: 'xml', content: xml });
  await showGeneratedDocument(document);
  void promptSave(document, message);
  return document;
}

export async function promptSave(document: vscode.TextDocument, message: string): Promise<void> {
  const label = drawioEditorInstalled() ? 'Save and Open in Draw.io' : 'Save as .drawio';
  const choice = await vscode.window.showInformationMessage(message, label);
  if (choice) await saveDrawio(document.getText());
}
