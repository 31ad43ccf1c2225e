// `npm run test:extension`: runs the mocha suites of test/extension/ inside the extension
// host of a real VS Code (code-server), with the extension loaded from the working tree.
// The workbench opened in headless Chromium starts the extension host; the URL's payload
// names the development extension and the tests (VS Code's own web integration tests do
// the same). Counts go to $TEST_COUNTS_FILE for scripts/test.sh's summary line.
import {
  appendFileSync,
  existsSync,
  mkdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import path from 'node:path';
import { openBrowser } from '../harness/browser';
import { startCodeServer, type CodeServer } from '../harness/code-server';
import { extensionId, repoRoot } from '../harness/paths';
import { buildExtensionTests, extensionTestsOut } from './build-tests';
import type { RunResults } from './runner/index';

const scratch = path.join(repoRoot, '.cache', 'extension-tests');
const artifacts = path.join(repoRoot, 'test-results');
const timeoutMs = Number(process.env.EXTENSION_TESTS_TIMEOUT_MS ?? 15 * 60_000);

function remoteUri(server: CodeServer, file: string): string {
  return `vscode-remote://${new URL(server.url).host}${file}`;
}

function report(results: RunResults): void {
  for (const test of results.tests) {
    const mark = test.state === 'passed' ? '✔' : test.state === 'failed' ? '✖' : '-';
    const time =
      test.durationMs !== undefined && test.durationMs > 100 ? ` (${test.durationMs}ms)` : '';
    console.log(`  ${mark} ${test.title}${time}`);
    if (test.error) console.log(test.error.replace(/^/gm, '      '));
  }
  console.log(
    `\n  ${results.passes} passing, ${results.failures} failing, ${results.pending} pending`,
  );
}

function recordCounts(passes: number, failures: number, pending: number): void {
  if (process.env.TEST_COUNTS_FILE)
    appendFileSync(process.env.TEST_COUNTS_FILE, `${passes} ${failures} ${pending}\n`);
}

async function main(): Promise<number> {
  if (!existsSync(path.join(repoRoot, 'dist', 'extension.js'))) {
    throw new Error('dist/extension.js is missing: run npm run build first');
  }
  const suites = await buildExtensionTests();
  console.log(`extension host tests: ${suites.join(', ')}`);

  rmSync(scratch, { recursive: true, force: true });
  const workspace = path.join(scratch, 'workspace');
  mkdirSync(workspace, { recursive: true });
  mkdirSync(artifacts, { recursive: true });
  const resultsFile = path.join(scratch, 'results.json');

  const server = await startCodeServer({
    dir: scratch,
    workspace,
    extensionDevelopment: true,
    env: {
      DESIGN_TO_CODE_TEST_RESULTS: resultsFile,
      DESIGN_TO_CODE_REPO: repoRoot,
      DESIGN_TO_CODE_EXTENSION_ID: extensionId(),
      DESIGN_TO_CODE_FIXTURES: path.join(repoRoot, 'test', 'fixtures'),
    },
  });
  const session = await openBrowser();
  const browserLog: string[] = [];
  try {
    const exitCode = new Promise<number>((resolve) => {
      void session.page.exposeFunction('codeAutomationExit', (code: number) => resolve(code));
    });
    await session.page.exposeFunction('codeAutomationLog', (type: string, args: unknown[]) => {
      browserLog.push(
        `[${type}] ${args.map((a) => (typeof a === 'string' ? a : JSON.stringify(a))).join(' ')}`,
      );
    });
    const payload = JSON.stringify([
      ['extensionDevelopmentPath', remoteUri(server, repoRoot)],
      ['extensionTestsPath', remoteUri(server, path.join(extensionTestsOut, 'runner'))],
      ['skipWelcome', 'true'],
    ]);
    const url = `${server.url}?folder=${encodeURIComponent(workspace)}&payload=${encodeURIComponent(payload)}`;
    await session.page.goto(url);

    const timedOut = new Promise<'timeout'>((resolve) =>
      setTimeout(() => resolve('timeout'), timeoutMs).unref(),
    );
    const outcome = await Promise.race([exitCode, timedOut]);
    if (outcome === 'timeout') {
      await session.page.screenshot({ path: path.join(artifacts, 'extension-tests-timeout.png') });
      throw new Error(
        `the extension host did not finish the tests within ${timeoutMs / 1000}s ` +
          '(screenshot: test-results/extension-tests-timeout.png)',
      );
    }
    if (!existsSync(resultsFile)) {
      throw new Error(
        `the extension host exited with code ${outcome} without running the test runner ` +
          '(out/extension-tests/runner); see test-results/extension-tests-browser.log and the ' +
          'extension host log under .cache/extension-tests/user-data/logs/',
      );
    }
    const results: RunResults = JSON.parse(readFileSync(resultsFile, 'utf8'));
    report(results);
    recordCounts(results.passes, results.failures, results.pending);
    return results.failures > 0 || outcome !== 0 ? 1 : 0;
  } finally {
    writeFileSync(path.join(artifacts, 'extension-tests-browser.log'), browserLog.join('\n'));
    await session.close();
    await server.stop();
  }
}

main().then(
  (code) => process.exit(code),
  (error: Error) => {
    console.error(`test:extension: ${error.message}`);
    recordCounts(0, 1, 0); // the harness itself failed: count it, so the summary cannot read green
    process.exit(1);
  },
);
