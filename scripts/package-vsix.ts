// `npm run package`: builds a platform .vsix (default linux-x64) that holds the bundles in
// dist/, media/, the manifest, README and LICENSE, and only the node_modules the bundles load
// at run time (the esbuild externals: onnxruntime-node, sharp, ...) with the native binaries
// of the target platform alone. Everything else is bundled by esbuild, so vsce runs on a
// staging folder built here rather than on the project root with its dev dependencies.
import { execFileSync } from 'node:child_process';
import {
  cpSync,
  existsSync,
  mkdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import path from 'node:path';
import {
  collectRuntimePackages,
  INSTALL_SCRIPT_ONLY,
  runtimeRequires,
} from './vsix/runtime-packages';
import { shouldShipFile, type Target } from './vsix/platform-filter';

const root = path.resolve(__dirname, '..');
const stage = path.join(root, '.cache', 'vsix-stage');

function parseTarget(argv: string[]): Target {
  const value =
    argv.find((a) => a.startsWith('--target='))?.slice('--target='.length) ?? 'linux-x64';
  const [os, cpu] = value.split('-');
  if (!os || !cpu) throw new Error(`--target must look like linux-x64, got "${value}"`);
  return { os, cpu, name: value };
}

function copyIfPresent(relative: string, filter?: (src: string) => boolean): boolean {
  const from = path.join(root, relative);
  if (!existsSync(from)) return false;
  cpSync(from, path.join(stage, relative), { recursive: true, filter });
  return true;
}

function stageManifest(runtime: Map<string, string>): { name: string; version: string } {
  const manifest = JSON.parse(readFileSync(path.join(root, 'package.json'), 'utf8'));
  // The shipped manifest declares exactly what the bundles require at run time; the rest of
  // the project's dependencies are inside dist/ already. No scripts: dist/ is built above.
  const direct = runtimeRequires(path.join(root, 'dist'));
  manifest.dependencies = Object.fromEntries(direct.map((name) => [name, runtime.get(name)]));
  delete manifest.devDependencies;
  delete manifest.scripts;
  writeFileSync(path.join(stage, 'package.json'), JSON.stringify(manifest, null, 2) + '\n');
  return manifest;
}

/**
 * The shipped copy of a package whose install script is left out also leaves out that
 * script's dependencies, so the manifest matches the files (and `npm ls` in vsce agrees).
 */
function dropInstallScript(packageDir: string, installOnly: string[]): void {
  const file = path.join(packageDir, 'package.json');
  const manifest = JSON.parse(readFileSync(file, 'utf8'));
  for (const dep of installOnly) delete manifest.dependencies?.[dep];
  for (const hook of ['preinstall', 'install', 'postinstall']) delete manifest.scripts?.[hook];
  writeFileSync(file, JSON.stringify(manifest, null, 2) + '\n');
}

/**
 * vsce refuses README images with relative paths unless it knows the repository's URL, and this
 * package names none: the staged README leaves out the repository's own pictures (and the
 * caption right under them). Everything else in it ships.
 */
function stageReadme(): void {
  const readme = readFileSync(path.join(root, 'README.md'), 'utf8');
  const withoutLocalImages = readme.replace(
    /^!\[[^\]]*\]\((?!https?:)[^)]*\)\n(\n_\([^]*?\)_\n)?/gm,
    '',
  );
  writeFileSync(path.join(stage, 'README.md'), withoutLocalImages);
}

function main(): void {
  const target = parseTarget(process.argv.slice(2));
  if (!existsSync(path.join(root, 'dist', 'extension.js'))) {
    throw new Error(
      'dist/extension.js is missing: run `npm run build` (or `npm run package`) first',
    );
  }
  if (!existsSync(path.join(root, 'LICENSE')))
    throw new Error('LICENSE is missing at the project root');

  rmSync(stage, { recursive: true, force: true });
  mkdirSync(stage, { recursive: true });

  const runtime = collectRuntimePackages(root, runtimeRequires(path.join(root, 'dist')), target);
  const manifest = stageManifest(new Map([...runtime].map(([name, pkg]) => [name, pkg.version])));

  copyIfPresent('dist', (src) => !src.endsWith('.map'));
  copyIfPresent('media');
  stageReadme();
  for (const doc of ['LICENSE', 'CHANGELOG.md']) copyIfPresent(doc);
  for (const [name, pkg] of runtime) {
    cpSync(pkg.dir, path.join(stage, 'node_modules', name), {
      recursive: true,
      filter: (src) => shouldShipFile(path.relative(pkg.dir, src), name, target),
    });
    const installOnly = INSTALL_SCRIPT_ONLY[name];
    if (installOnly) dropInstallScript(path.join(stage, 'node_modules', name), installOnly);
  }

  // Everything staged ships; the file only tells vsce that the selection was deliberate.
  writeFileSync(
    path.join(stage, '.vscodeignore'),
    '# staged by scripts/package-vsix.ts: all of it ships\n',
  );

  const out = path.join(root, `${manifest.name}-${target.name}-${manifest.version}.vsix`);
  rmSync(out, { force: true });
  const vsce = path.join(root, 'node_modules', '@vscode', 'vsce', 'vsce');
  execFileSync(
    process.execPath,
    [vsce, 'package', '--target', target.name, '--allow-missing-repository', '--out', out],
    { cwd: stage, stdio: 'inherit' },
  );
  const mib = (statSync(out).size / 2 ** 20).toFixed(1);
  console.log(`packaged ${path.basename(out)} (${mib} MiB) with ${[...runtime.keys()].join(', ')}`);
}

try {
  main();
} catch (error) {
  const message =
    (error as { status?: number }).status !== undefined
      ? 'vsce package failed (its message is above)'
      : String((error as Error).message ?? error);
  console.error(`package: ${message}`);
  process.exit(1);
}
