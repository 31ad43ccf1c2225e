// code-server with the extension loaded from this working tree, for development without a
// desktop VS Code: esbuild rebuilds on every change ("Developer: Reload Window" picks it up)
// and the URL printed below opens the workbench. Ctrl+C stops both.
import { spawn } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { startCodeServer } from '../test/harness/code-server';
import { repoRoot } from '../test/harness/paths';

async function main(): Promise<void> {
  const dir = path.join(repoRoot, '.cache', 'dev');
  const workspace = process.argv[2] ? path.resolve(process.argv[2]) : path.join(dir, 'workspace');
  mkdirSync(workspace, { recursive: true });
  const port = Number(process.env.PORT ?? 8080);
  const server = await startCodeServer({ dir, workspace, port, extensionDevelopment: true });
  const watcher = spawn(process.execPath, ['esbuild.mjs', '--watch'], {
    cwd: repoRoot,
    stdio: 'inherit',
  });

  const payload = JSON.stringify([
    ['extensionDevelopmentPath', `vscode-remote://${new URL(server.url).host}${repoRoot}`],
  ]);
  const url = `${server.url}?folder=${encodeURIComponent(workspace)}&payload=${encodeURIComponent(payload)}`;
  console.log(
    `\nDesign to Code is loaded in code-server: open\n  ${url}\n(code-server log: ${server.logFile})`,
  );

  const shutdown = async () => {
    watcher.kill();
    await server.stop();
    process.exit(0);
  };
  process.on('SIGINT', () => void shutdown());
  process.on('SIGTERM', () => void shutdown());
}

main().catch((error: Error) => {
  console.error(`npm start: ${error.message}`);
  process.exit(1);
});
