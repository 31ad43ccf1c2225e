// The harness's own check, ahead of the feature suites in test/extension/suite/: the
// extension under development is loaded from the working tree, activates, and registers
// every command its manifest contributes.
import assert from 'node:assert/strict';
import * as vscode from 'vscode';

const extensionId = process.env.DESIGN_TO_CODE_EXTENSION_ID ?? 'design-to-code.design-to-code';

describe('Design to Code in the code-server extension host', function () {
  it('is loaded from the working tree and activates', async function () {
    const extension = vscode.extensions.getExtension(extensionId);
    assert.ok(extension, `${extensionId} is not loaded in the extension host`);
    assert.equal(extension.extensionUri.fsPath, process.env.DESIGN_TO_CODE_REPO);
    await extension.activate();
    assert.equal(extension.isActive, true);
  });

  it('registers every command that package.json contributes', async function () {
    const extension = vscode.extensions.getExtension(extensionId)!;
    const contributed: string[] = (extension.packageJSON.contributes?.commands ?? []).map(
      (command: { command: string }) => command.command,
    );
    assert.ok(contributed.length > 0, 'package.json contributes no commands');
    await extension.activate();
    const registered = new Set(await vscode.commands.getCommands(true));
    assert.deepEqual(
      contributed.filter((command) => !registered.has(command)),
      [],
      'contributed commands that activate() did not register',
    );
  });
});
