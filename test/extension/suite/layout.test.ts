// Where generated code and the live preview open: never over the Design to Code panel, so
// that its progress line and Stop button stay in view while the code streams.
import assert from 'node:assert/strict';
import * as vscode from 'vscode';
import type { DesignToCodeExtension } from '../../../src/extension';
import { toDeltas, type OpenAiStub } from '../../support/openai-stub-server';
import { closeAllEditors, fixtureImage, requestId, useOpenAiStub, within } from './helpers';

const REPLY = '```html\n<!DOCTYPE html><html><body><h1>Hello</h1></body></html>\n```';

function groupShowing(viewType: string): vscode.TabGroup | undefined {
  return vscode.window.tabGroups.all.find((group) => {
    const input = group.activeTab?.input;
    return input instanceof vscode.TabInputWebview && input.viewType.endsWith(viewType);
  });
}

async function until<T>(find: () => T | undefined, what: string): Promise<T> {
  const found = await within(
    (async () => {
      for (;;) {
        const value = find();
        if (value !== undefined) return value;
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
    })(),
    10_000,
    what,
  );
  return found;
}

describe('editor layout around the panel', function () {
  this.timeout(60_000);
  let extension: DesignToCodeExtension;
  let stub: OpenAiStub;
  let restore: () => Promise<void>;

  before(async () => {
    ({ extension, stub, restore } = await useOpenAiStub(
      { deltas: toDeltas(REPLY) },
      { insertMode: 'new-document', previewAutoOpen: true },
    ));
    await closeAllEditors();
  });

  after(async () => {
    await restore();
    await closeAllEditors();
  });

  it('opens the generated document and the preview beside the panel, which keeps focus', async () => {
    await vscode.commands.executeCommand('designToCode.openPanel');
    const panelGroup = await until(() => groupShowing('designToCode.panel'), 'the panel');
    assert.equal(panelGroup.isActive, true, 'the panel did not take the focus when opened');

    const result = await extension.api.generate(
      { requestId: requestId(), image: fixtureImage(), target: 'html', instruction: '' },
      () => undefined,
    );
    assert.equal(result.outcome, 'done');

    const stillPanel = groupShowing('designToCode.panel');
    assert.ok(stillPanel, 'the panel is no longer the visible tab of any group');
    assert.equal(stillPanel.viewColumn, panelGroup.viewColumn);
    assert.equal(stillPanel.isActive, true, 'the generated document took the focus');

    const editor = vscode.window.visibleTextEditors.find(
      (candidate) => candidate.document.uri.toString() === result.documentUri,
    );
    assert.ok(editor, 'the generated document is not visible');
    assert.notEqual(editor.viewColumn, panelGroup.viewColumn);

    const previewGroup = await until(() => groupShowing('designToCode.preview'), 'the preview');
    assert.notEqual(previewGroup.viewColumn, panelGroup.viewColumn, 'the preview covers the panel');
    assert.notEqual(previewGroup.viewColumn, editor.viewColumn, 'the preview covers the code');
  });
});
