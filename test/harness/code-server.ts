// Starts code-server (a real VS Code, served to a browser) from .tools/ with its own
// user-data, extensions and config folders under a scratch directory, and stops it with
// every process it started (the extension host and whatever the extension spawned).
import { spawn, execFile, type ChildProcess } from 'node:child_process';
import {
  createWriteStream,
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  writeFileSync,
} from 'node:fs';
import { createServer } from 'node:net';
import path from 'node:path';
import { promisify } from 'node:util';
import { codeServerBin, node24Dir } from './paths';

export interface CodeServerOptions {
  /** Port to listen on (default: a free one). */
  port?: number;
  /** Scratch root; user-data/, extensions/, config/ and code-server.log go under it. */
  dir: string;
  /** Folder the workbench opens. */
  workspace: string;
  /** User settings merged over the quiet defaults below. */
  settings?: Record<string, unknown>;
  /** Extra environment for code-server and so for its extension host. */
  env?: Record<string, string>;
  /**
   * Lets the workbench URL's `payload` carry extensionDevelopmentPath / extensionTestsPath
   * (a built VS Code honours those only with the smoke-test driver enabled).
   */
  extensionDevelopment?: boolean;
}

export interface CodeServer {
  url: string;
  userDataDir: string;
  extensionsDir: string;
  logFile: string;
  process: ChildProcess;
  stop(): Promise<void>;
}

// No network here and no telemetry in tests: keep the workbench from reaching out, and keep
// welcome pages, tips and AI features from covering the editor area.
const QUIET_SETTINGS = {
  'telemetry.telemetryLevel': 'off',
  'update.mode': 'none',
  'extensions.autoCheckUpdates': false,
  'extensions.autoUpdate': false,
  'extensions.ignoreRecommendations': true,
  'workbench.enableExperiments': false,
  'workbench.startupEditor': 'none',
  'workbench.tips.enabled': false,
  'workbench.welcomePage.walkthroughs.openOnInstall': false,
  'chat.disableAIFeatures': true,
  'git.enabled': false,
  'github.gitAuthentication': false,
  'security.workspace.trust.enabled': false,
};

const execFileAsync = promisify(execFile);

function environment(dir: string, extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  return {
    ...process.env,
    // code-server needs Node 24; the project's Node stays for everything else.
    PATH: `${node24Dir()}${path.delimiter}${process.env.PATH}`,
    XDG_CONFIG_HOME: path.join(dir, 'config'),
    XDG_DATA_HOME: path.join(dir, 'data'),
    // The local server's ONNX builds, and the vision outputs it keeps beside them, in this run's
    // folder: a test that expects the vision tower to run must not find an earlier run's outputs
    // (and tests leave the user's ~/.cache alone).
    DESIGN_TO_CODE_CACHE: path.join(dir, 'onnx'),
    ...extra,
  };
}

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

/** Installs a .vsix the way a user does (`code-server --install-extension`). */
export async function installExtension(dir: string, vsix: string): Promise<string> {
  const args = [
    '--user-data-dir',
    path.join(dir, 'user-data'),
    '--extensions-dir',
    path.join(dir, 'extensions'),
    '--install-extension',
    vsix,
    '--force',
  ];
  try {
    const { stdout, stderr } = await execFileAsync(codeServerBin(), args, {
      env: environment(dir),
    });
    return `${stdout}${stderr}`;
  } catch (error) {
    const { stdout = '', stderr = '' } = error as { stdout?: string; stderr?: string };
    throw new Error(
      `code-server --install-extension ${path.basename(vsix)} failed:\n${stdout}${stderr}`,
    );
  }
}

async function waitForHealth(
  url: string,
  child: ChildProcess,
  logFile: string,
  timeoutMs: number,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) break;
    try {
      if ((await fetch(`${url}healthz`)).ok) return;
    } catch {
      // not listening yet
    }
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
  const log = existsSync(logFile)
    ? readFileSync(logFile, 'utf8').split('\n').slice(-20).join('\n')
    : '';
  const why =
    child.exitCode !== null
      ? `exited with code ${child.exitCode}`
      : `did not answer in ${timeoutMs / 1000}s`;
  throw new Error(`code-server ${why}; last lines of ${logFile}:\n${log}`);
}

export async function startCodeServer(options: CodeServerOptions): Promise<CodeServer> {
  const userDataDir = path.join(options.dir, 'user-data');
  const extensionsDir = path.join(options.dir, 'extensions');
  mkdirSync(path.join(userDataDir, 'User'), { recursive: true });
  mkdirSync(extensionsDir, { recursive: true });
  // A reused folder (npm start) keeps the user's own settings; the options win over both.
  const settingsFile = path.join(userDataDir, 'User', 'settings.json');
  const existing = existsSync(settingsFile) ? JSON.parse(readFileSync(settingsFile, 'utf8')) : {};
  writeFileSync(
    settingsFile,
    JSON.stringify({ ...QUIET_SETTINGS, ...existing, ...options.settings }, null, 2),
  );

  const port = options.port ?? (await freePort());
  const url = `http://127.0.0.1:${port}/`;
  const args = [
    '--auth=none',
    `--bind-addr=127.0.0.1:${port}`,
    '--disable-telemetry',
    '--disable-update-check',
    '--disable-workspace-trust',
    '--disable-getting-started-override',
    `--user-data-dir=${userDataDir}`,
    `--extensions-dir=${extensionsDir}`,
    ...(options.extensionDevelopment ? ['--vscode-option', 'enable-smoke-test-driver'] : []),
    options.workspace,
  ];
  const logFile = path.join(options.dir, 'code-server.log');
  const log = createWriteStream(logFile);
  // Its own process group, so stop() also ends the extension host and its children.
  const child = spawn(codeServerBin(), args, {
    env: environment(options.dir, options.env),
    detached: true,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  child.stdout!.pipe(log);
  child.stderr!.pipe(log);

  const stop = async () => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise((resolve) => child.once('exit', resolve));
    killGroup(child, 'SIGTERM');
    const timer = setTimeout(() => killGroup(child, 'SIGKILL'), 5000);
    await exited;
    clearTimeout(timer);
    killGroup(child, 'SIGKILL'); // anything in the group that outlived code-server
  };
  try {
    await waitForHealth(url, child, logFile, 60_000);
  } catch (error) {
    await stop();
    throw error;
  }
  return { url, userDataDir, extensionsDir, logFile, process: child, stop };
}

function killGroup(child: ChildProcess, signal: NodeJS.Signals): void {
  try {
    process.kill(-child.pid!, signal);
  } catch {
    // already gone
  }
}

/** The remote extension host's logs (activation lines, errors), newest session last. */
export function extensionHostLog(userDataDir: string): string {
  const logs = path.join(userDataDir, 'logs');
  if (!existsSync(logs)) return '';
  const texts: string[] = [];
  for (const session of readdirSync(logs).sort()) {
    const sessionDir = path.join(logs, session);
    for (const host of readdirSync(sessionDir).filter((name) => name.startsWith('exthost'))) {
      const file = path.join(sessionDir, host, 'remoteexthost.log');
      if (existsSync(file)) texts.push(readFileSync(file, 'utf8'));
    }
  }
  return texts.join('\n');
}
