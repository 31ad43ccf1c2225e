// VS Code's extension-test entry point for the desktop route (@vscode/test-electron's
// extensionTestsPath): runs every compiled *.test.js next to this file with mocha (BDD, with
// TDD's suite/test too). The code-server route uses test/extension/runner/ instead.
import { readdirSync } from 'node:fs';
import path from 'node:path';
import Mocha from 'mocha';

export function run(): Promise<void> {
  const mocha = new Mocha({ ui: 'bdd', color: true, timeout: 120_000 });
  Mocha.interfaces.tdd(mocha.suite);
  for (const file of readdirSync(__dirname)
    .filter((name) => name.endsWith('.test.js'))
    .sort()) {
    mocha.addFile(path.join(__dirname, file));
  }
  return new Promise((resolve, reject) => {
    mocha.run((failures) =>
      failures > 0 ? reject(new Error(`${failures} test(s) failed`)) : resolve(),
    );
  });
}
