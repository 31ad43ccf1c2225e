// Runs inside code-server's extension host (loaded through the workbench's
// extensionTestsPath): mocha over the compiled suites next to this file, results written
// as JSON to $DESIGN_TO_CODE_TEST_RESULTS for test/extension/run-in-code-server.ts to report.
import { readdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import Mocha from 'mocha';

export interface TestResult {
  title: string;
  state: 'passed' | 'failed' | 'pending';
  durationMs?: number;
  error?: string;
}

export interface RunResults {
  passes: number;
  failures: number;
  pending: number;
  tests: TestResult[];
}

function compiledSuites(dir: string): string[] {
  return (readdirSync(dir, { recursive: true }) as string[])
    .filter((file) => file.endsWith('.test.js'))
    .sort()
    .map((file) => path.join(dir, file));
}

export async function run(): Promise<void> {
  const resultsFile = process.env.DESIGN_TO_CODE_TEST_RESULTS;
  if (!resultsFile)
    throw new Error('DESIGN_TO_CODE_TEST_RESULTS is not set: start through npm run test:extension');

  const mocha = new Mocha({
    ui: 'bdd',
    timeout: Number(process.env.DESIGN_TO_CODE_TEST_TIMEOUT_MS ?? 120_000),
  });
  // Suites may use either describe/it or VS Code's usual suite/test.
  Mocha.interfaces.tdd(mocha.suite);
  mocha.reporter(Mocha.reporters.Base); // silent: the harness prints the results
  for (const file of compiledSuites(path.resolve(__dirname, '..'))) mocha.addFile(file);

  const results: RunResults = { passes: 0, failures: 0, pending: 0, tests: [] };
  await new Promise<void>((resolve) => {
    const runner = mocha.run(() => resolve());
    runner.on('pass', (test) => {
      results.passes++;
      results.tests.push({ title: test.fullTitle(), state: 'passed', durationMs: test.duration });
    });
    runner.on('fail', (test, error: Error) => {
      results.failures++;
      results.tests.push({
        title: test.fullTitle(),
        state: 'failed',
        error: error.stack ?? String(error),
      });
    });
    runner.on('pending', (test) => {
      results.pending++;
      results.tests.push({ title: test.fullTitle(), state: 'pending' });
    });
  });
  writeFileSync(resultsFile, JSON.stringify(results, null, 2));
  if (results.failures > 0) throw new Error(`${results.failures} extension test(s) failed`);
}
