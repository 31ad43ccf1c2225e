// `npm run test:extension:desktop`: the same extension-host suites in a desktop VS Code that
// @vscode/test-electron downloads (or the one at $VSCODE_EXECUTABLE). For a developer's machine
// with a display; CI and machines without access to VS Code's downloads use the code-server route
// (`npm run test:extension`).
import path from 'node:path';
import { runTests } from '@vscode/test-electron';
import { buildExtensionTests, extensionTestsOut } from './build-tests';
import { repoRoot } from '../harness/paths';

async function main(): Promise<void> {
  await buildExtensionTests();
  await runTests({
    vscodeExecutablePath: process.env.VSCODE_EXECUTABLE || undefined,
    extensionDevelopmentPath: repoRoot,
    extensionTestsPath: path.join(extensionTestsOut, 'runner'),
    launchArgs: ['--disable-extensions', repoRoot],
    extensionTestsEnv: {
      DESIGN_TO_CODE_REPO: repoRoot,
      DESIGN_TO_CODE_FIXTURES: path.join(repoRoot, 'test', 'fixtures'),
      DESIGN_TO_CODE_TEST_RESULTS: path.join(repoRoot, 'test-results', 'extension-tests.json'),
    },
  });
}

main().catch((error: unknown) => {
  console.error(error instanceof Error ? error.message : error);
  process.exitCode = 1;
});
