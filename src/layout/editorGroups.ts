/**
 * Opens documents and the preview in editor groups that leave the Design to Code panel in
 * view (see ./columnChoice.ts for the rules).
 */
import * as vscode from 'vscode';
import {
  columnForCode,
  columnForPreview,
  extensionViewType,
  focusIsOnWebview,
  type EditorGroupView,
} from './columnChoice';
import { PANEL_VIEW_TYPE, PREVIEW_VIEW_TYPE } from './viewTypes';

/** The panel and the preview: generated code opens over neither. */
const OWN_WEBVIEW_TYPES = [PANEL_VIEW_TYPE, PREVIEW_VIEW_TYPE];
const PANEL_ONLY = [PANEL_VIEW_TYPE];

export function editorGroupViews(): EditorGroupView[] {
  return vscode.window.tabGroups.all.map((group) => {
    const input = group.activeTab?.input;
    return {
      viewColumn: group.viewColumn,
      isActive: group.isActive,
      webviewType:
        input instanceof vscode.TabInputWebview ? extensionViewType(input.viewType) : undefined,
      documentUri: input instanceof vscode.TabInputText ? input.uri.toString() : undefined,
    };
  });
}

/**
 * Shows a generated document: where it is already visible, else in a group that is not the
 * panel's. Focus stays in the panel when the user is there.
 */
export async function showGeneratedDocument(
  document: vscode.TextDocument,
): Promise<vscode.TextEditor> {
  const groups = editorGroupViews();
  const visible = vscode.window.visibleTextEditors.find((editor) => editor.document === document);
  return vscode.window.showTextDocument(document, {
    viewColumn: visible?.viewColumn ?? columnForCode(groups, OWN_WEBVIEW_TYPES),
    preserveFocus: focusIsOnWebview(groups, OWN_WEBVIEW_TYPES),
    preview: false,
  });
}

/** The column for the live preview of `document`: beside it, and not over the panel. */
export function previewColumn(document: vscode.TextDocument | undefined): vscode.ViewColumn {
  if (!document) return vscode.ViewColumn.Beside;
  return columnForPreview(editorGroupViews(), document.uri.toString(), PANEL_ONLY);
}
