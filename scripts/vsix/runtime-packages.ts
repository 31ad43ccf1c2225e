// Finds the npm packages the built bundles load at run time (their remaining `require`s of
// bare package names, i.e. esbuild's externals) and the installed closure of their
// dependencies that fits the target platform.
import { builtinModules } from 'node:module';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { packageFitsTarget, type Target } from './platform-filter';

export interface RuntimePackage {
  dir: string;
  version: string;
}

const REQUIRE_CALL = /\brequire\(\s*["']([^"'./][^"']*)["']\s*\)/g;
const PROVIDED_BY_HOST = new Set(['vscode']);
// Dependencies that only a package's install script uses (downloading optional GPU
// binaries), never its runtime code: they do not ship.
export const INSTALL_SCRIPT_ONLY: Record<string, string[]> = {
  'onnxruntime-node': ['adm-zip', 'global-agent'],
};

function packageName(specifier: string): string {
  const parts = specifier.split('/');
  return specifier.startsWith('@') ? parts.slice(0, 2).join('/') : parts[0]!;
}

function isBuiltin(name: string): boolean {
  return name.startsWith('node:') || builtinModules.includes(name);
}

function nodeBundles(dir: string): string[] {
  return readdirSync(dir)
    .map((entry) => path.join(dir, entry))
    .filter((file) => file.endsWith('.js') && statSync(file).isFile());
}

/** Bare package names that dist/*.js (the Node bundles; dist/webview is browser code) require. */
export function runtimeRequires(distDir: string): string[] {
  const names = new Set<string>();
  for (const file of nodeBundles(distDir)) {
    for (const match of readFileSync(file, 'utf8').matchAll(REQUIRE_CALL)) {
      const name = packageName(match[1]!);
      if (!isBuiltin(name) && !PROVIDED_BY_HOST.has(name)) names.add(name);
    }
  }
  return [...names].sort();
}

function readManifest(dir: string) {
  return JSON.parse(readFileSync(path.join(dir, 'package.json'), 'utf8'));
}

/**
 * The installed packages (hoisted at the project's node_modules) that `names` need, with
 * their dependencies and the optional dependencies that are installed and fit `target`.
 * A required name that is not installed is reported unless only an optional require in
 * bundled code asks for it (e.g. `ws` probing for `bufferutil`), which the bundle tolerates.
 */
export function collectRuntimePackages(
  root: string,
  names: string[],
  target: Target,
): Map<string, RuntimePackage> {
  const found = new Map<string, RuntimePackage>();
  const queue = names.map((name) => ({ name, optional: true, from: 'dist/', fromDir: root }));
  const missing: string[] = [];
  while (queue.length > 0) {
    const { name, optional, from, fromDir } = queue.shift()!;
    // A dependency nested under its dependent ships inside the dependent's folder.
    if (fromDir !== root && existsSync(path.join(fromDir, 'node_modules', name, 'package.json')))
      continue;
    if (found.has(name)) continue;
    const dir = path.join(root, 'node_modules', name);
    if (!existsSync(path.join(dir, 'package.json'))) {
      if (!optional) missing.push(`${name} (needed by ${from})`);
      continue;
    }
    const manifest = readManifest(dir);
    if (!packageFitsTarget(manifest, target)) continue;
    found.set(name, { dir, version: manifest.version });
    const installOnly = INSTALL_SCRIPT_ONLY[name] ?? [];
    for (const dep of Object.keys(manifest.dependencies ?? {}).filter(
      (d) => !installOnly.includes(d),
    )) {
      queue.push({ name: dep, optional: false, from: name, fromDir: dir });
    }
    for (const dep of Object.keys(manifest.optionalDependencies ?? {})) {
      queue.push({ name: dep, optional: true, from: name, fromDir: dir });
    }
  }
  if (missing.length > 0)
    throw new Error(`runtime dependencies not installed: ${missing.join(', ')}; run npm ci`);
  return new Map([...found].sort(([a], [b]) => a.localeCompare(b)));
}
