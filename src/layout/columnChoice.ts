/**
 * Which editor group (view column) a document or the preview opens in, so that neither covers
 * the Design to Code panel: pressing Generate in the panel makes the panel's group the active
 * one, and opening the code there would hide the progress line and the Stop button.
 * Pure: the groups are described by src/layout/editorGroups.ts.
 */

/** What an editor group shows on top: a webview (by view type) or a text document (by URI). */
export interface EditorGroupView {
  viewColumn: number;
  isActive: boolean;
  webviewType?: string;
  documentUri?: string;
}

/** VS Code has at most nine view columns; a number past the last group opens a new one. */
const MAX_VIEW_COLUMN = 9;
/** vscode.ViewColumn.Beside: the group to the right of the active one. */
export const BESIDE = -2;

/**
 * The active group when `avoid` spares it, else the leftmost group it spares, else a new
 * group to the right of the others.
 */
export function chooseColumn(
  groups: readonly EditorGroupView[],
  avoid: (group: EditorGroupView) => boolean,
): number {
  const active = groups.find((group) => group.isActive && !avoid(group));
  if (active) return active.viewColumn;
  const sorted = [...groups].sort((a, b) => a.viewColumn - b.viewColumn);
  const free = sorted.find((group) => !avoid(group));
  if (free) return free.viewColumn;
  const next = Math.max(0, ...groups.map((group) => group.viewColumn)) + 1;
  return next <= MAX_VIEW_COLUMN ? next : BESIDE;
}

/** Where generated code opens: any group that does not show one of `webviewTypes`. */
export function columnForCode(
  groups: readonly EditorGroupView[],
  webviewTypes: readonly string[],
): number {
  return chooseColumn(groups, (group) => showsWebview(group, webviewTypes));
}

/** Where the preview opens: neither over `documentUri` nor over one of `webviewTypes`. */
export function columnForPreview(
  groups: readonly EditorGroupView[],
  documentUri: string,
  webviewTypes: readonly string[],
): number {
  return chooseColumn(
    groups,
    (group) => group.documentUri === documentUri || showsWebview(group, webviewTypes),
  );
}

/**
 * Whether the user is in one of these webviews: then a new editor must not take the focus,
 * so that the panel's Stop button stays at hand.
 */
export function focusIsOnWebview(
  groups: readonly EditorGroupView[],
  webviewTypes: readonly string[],
): boolean {
  return groups.some((group) => group.isActive && showsWebview(group, webviewTypes));
}

function showsWebview(group: EditorGroupView, webviewTypes: readonly string[]): boolean {
  return group.webviewType !== undefined && webviewTypes.includes(group.webviewType);
}

/**
 * The extension's own view type of a tab's webview: VS Code reports extension webview panels
 * with an internal prefix (`mainThreadWebview-designToCode.panel`).
 */
export function extensionViewType(reported: string): string {
  const prefix = 'mainThreadWebview-';
  return reported.startsWith(prefix) ? reported.slice(prefix.length) : reported;
}
