/**
 * What to run as the local server: the DESIGN_TO_CODE_SERVER environment variable, else the
 * serverPath setting, else the bundled dist/cli.js. JavaScript files run on the editor's own
 * Node (process.execPath with ELECTRON_RUN_AS_NODE=1); anything else runs as an executable.
 */
import { accessSync, constants, statSync } from 'node:fs';
import { isAbsolute, join, resolve } from 'node:path';
import { IMAGE_DETAIL_PIXELS, type Settings } from '../settings/schema';

export interface ServerCommand {
  command: string;
  args: string[];
  env: Record<string, string>;
  /** Where it came from, for messages and the log. */
  source: 'environment' | 'setting' | 'bundled';
  path: string;
}

export interface ResolveInputs {
  environmentOverride?: string;
  settingPath: string;
  extensionPath: string;
  workspaceFolder?: string;
  execPath: string;
}

export class ServerNotFound extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ServerNotFound';
  }
}

function checkRunnable(path: string, isScript: boolean, source: string): void {
  let stats;
  try {
    stats = statSync(path);
  } catch {
    throw new ServerNotFound(`The server ${source} points to ${path}, which does not exist.`);
  }
  if (!stats.isFile())
    throw new ServerNotFound(`The server ${source} points to ${path}, which is not a file.`);
  if (!isScript) {
    try {
      accessSync(path, constants.X_OK);
    } catch {
      throw new ServerNotFound(`The server ${source} points to ${path}, which is not executable.`);
    }
  }
}

/** The `serve` arguments the settings ask for; `offline`: no check of the hub for updates. */
export function serveArguments(settings: Settings, offline: boolean): string[] {
  const args = ['serve', '--model', settings.model, '--port', '0', '--host', '127.0.0.1'];
  if (offline) args.push('--offline');
  if (settings.device !== 'auto') args.push('--device', settings.device);
  if (settings.precision !== 'auto') args.push('--precision', settings.precision);
  const pixels = IMAGE_DETAIL_PIXELS[settings.imageDetail];
  if (pixels !== undefined) args.push('--max-image-pixels', pixels);
  return args;
}

export function resolveServerCommand(inputs: ResolveInputs, serveArgs: string[]): ServerCommand {
  const candidates: [ServerCommand['source'], string | undefined, string][] = [
    ['environment', inputs.environmentOverride, 'in DESIGN_TO_CODE_SERVER'],
    ['setting', inputs.settingPath, 'setting designToCode.serverPath'],
  ];
  let source: ServerCommand['source'] = 'bundled';
  let path = join(inputs.extensionPath, 'dist', 'cli.js');
  let described = 'bundled with the extension';
  for (const [candidateSource, value, description] of candidates) {
    if (value && value.trim()) {
      source = candidateSource;
      const raw = value.trim();
      path = isAbsolute(raw) ? raw : resolve(inputs.workspaceFolder ?? inputs.extensionPath, raw);
      described = description;
      break;
    }
  }
  const isScript = /\.(c|m)?js$/.test(path);
  checkRunnable(path, isScript, described);
  if (isScript) {
    return {
      command: inputs.execPath,
      args: [path, ...serveArgs],
      env: { ELECTRON_RUN_AS_NODE: '1' },
      source,
      path,
    };
  }
  return { command: path, args: serveArgs, env: {}, source, path };
}
