import { strict as assert } from 'node:assert';
import {
  BESIDE,
  columnForCode,
  columnForPreview,
  extensionViewType,
  focusIsOnWebview,
  type EditorGroupView,
} from '../../src/layout/columnChoice';

const PANEL = 'designToCode.panel';
const PREVIEW = 'designToCode.preview';
const OWN = [PANEL, PREVIEW];

const panelGroup = (viewColumn: number, isActive: boolean): EditorGroupView => ({
  viewColumn,
  isActive,
  webviewType: PANEL,
});
const textGroup = (viewColumn: number, isActive: boolean, uri: string): EditorGroupView => ({
  viewColumn,
  isActive,
  documentUri: uri,
});

describe('columnForCode: generated code never opens over the panel', () => {
  it('opens a new group beside the panel when the panel is the only group', () => {
    assert.equal(columnForCode([panelGroup(1, true)], OWN), 2);
  });

  it('uses the first other group when Generate was pressed in the panel', () => {
    const groups = [textGroup(1, false, 'file:///a.html'), panelGroup(2, true)];
    assert.equal(columnForCode(groups, OWN), 1);
  });

  it('keeps the active text group when the user is in an editor', () => {
    const groups = [panelGroup(1, false), textGroup(2, true, 'file:///a.html')];
    assert.equal(columnForCode(groups, OWN), 2);
  });

  it('avoids the preview too, and opens a new group when every group shows a webview', () => {
    const groups = [panelGroup(1, true), { viewColumn: 2, isActive: false, webviewType: PREVIEW }];
    assert.equal(columnForCode(groups, OWN), 3);
  });

  it('falls back to Beside when all nine columns are taken', () => {
    const groups = Array.from({ length: 9 }, (_, i) => panelGroup(i + 1, i === 0));
    assert.equal(columnForCode(groups, OWN), BESIDE);
  });

  it('is not fooled by groups listed out of column order', () => {
    const groups = [panelGroup(1, true), textGroup(3, false, 'x'), textGroup(2, false, 'y')];
    assert.equal(columnForCode(groups, OWN), 2);
  });
});

describe('columnForPreview: beside the document, not over it or the panel', () => {
  it('opens a third group when the panel and the document fill two', () => {
    const groups = [panelGroup(1, true), textGroup(2, false, 'untitled:Untitled-1')];
    assert.equal(columnForPreview(groups, 'untitled:Untitled-1', [PANEL]), 3);
  });

  it('reuses a group that shows something else', () => {
    const groups = [
      textGroup(1, true, 'file:///page.html'),
      textGroup(2, false, 'file:///other.css'),
    ];
    assert.equal(columnForPreview(groups, 'file:///page.html', [PANEL]), 2);
  });
});

describe('focus and view types', () => {
  it('keeps focus in the panel only when the user is there', () => {
    assert.equal(focusIsOnWebview([panelGroup(1, true)], OWN), true);
    assert.equal(focusIsOnWebview([panelGroup(1, false), textGroup(2, true, 'x')], OWN), false);
  });

  it("strips VS Code's prefix from a webview tab's view type", () => {
    assert.equal(extensionViewType('mainThreadWebview-designToCode.panel'), PANEL);
    assert.equal(extensionViewType(PANEL), PANEL);
  });
});
