// Compiles the extension-host tests (test/extension/{smoke,suite}/**/*.test.ts and the
// runner) to CommonJS under out/extension-tests/, the layout the runner expects: suites
// next to runner/index.js. `vscode` comes from the host and `mocha` from node_modules.
import { existsSync, readdirSync, rmSync } from 'node:fs';
import path from 'node:path';
import * as esbuild from 'esbuild';
import { repoRoot } from '../harness/paths';

export const extensionTestsOut = path.join(repoRoot, 'out', 'extension-tests');
const SUITE_DIRS = ['test/extension/smoke', 'test/extension/suite'];

export function suiteFiles(): string[] {
  return SUITE_DIRS.flatMap((dir) => {
    const absolute = path.join(repoRoot, dir);
    if (!existsSync(absolute)) return [];
    return (readdirSync(absolute, { recursive: true }) as string[])
      .filter((file) => file.endsWith('.test.ts'))
      .map((file) => path.join(absolute, file));
  });
}

export async function buildExtensionTests(): Promise<string[]> {
  rmSync(extensionTestsOut, { recursive: true, force: true });
  const suites = suiteFiles();
  await esbuild.build({
    entryPoints: [path.join(repoRoot, 'test/extension/runner/index.ts'), ...suites],
    outbase: path.join(repoRoot, 'test/extension'),
    outdir: extensionTestsOut,
    bundle: true,
    platform: 'node',
    format: 'cjs',
    target: 'node20',
    sourcemap: 'inline',
    external: ['vscode', 'mocha'],
    logLevel: 'warning',
  });
  return suites.map((file) => path.relative(repoRoot, file));
}

// `tsx test/extension/build-tests.ts`: the "Extension Tests" launch configuration's pre-task.
if (require.main === module) {
  buildExtensionTests().then(
    (suites) =>
      console.log(`built ${suites.length} extension test file(s) into out/extension-tests/`),
    (error: Error) => {
      console.error(error.message);
      process.exit(1);
    },
  );
}
