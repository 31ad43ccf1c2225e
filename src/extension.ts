/**
 * Composition root: constructs each feature once and ties its life to the extension's.
 * Nothing starts the local server here; the first generation (or a server command) does.
 */
import * as vscode from 'vscode';
import { registerCommands } from './commands/register';
import { showGenerationError } from './commands/showError';
import type { GenerationApi, PanelHandle, PreviewHandle } from './generation/api';
import { GenerationController } from './generation/controller';
import { HistoryStore } from './generation/history';
import { registerPanel } from './panel';
import { registerPreview } from './preview';
import { registerImagePaste } from './paste/imagePaste';
import { ApiKeyStore } from './secrets/apiKey';
import { serverReaction } from './settings/schema';
import { SettingsService } from './settings/settings';
import { ServerStatusBar } from './server/statusBar';
import { ServerSupervisor } from './server/supervisor';

/** What activate() returns: used by the integration tests and by other extensions. */
export interface DesignToCodeExtension {
  api: GenerationApi;
  server: ServerSupervisor;
  settings: SettingsService;
  apiKeys: ApiKeyStore;
  log: vscode.LogOutputChannel;
}

let supervisor: ServerSupervisor | undefined;

export function activate(context: vscode.ExtensionContext): DesignToCodeExtension {
  const track = <T extends vscode.Disposable>(disposable: T): T => {
    context.subscriptions.push(disposable);
    return disposable;
  };

  const log = track(vscode.window.createOutputChannel('Design to Code', { log: true }));
  const settings = track(new SettingsService());
  const apiKeys = new ApiKeyStore(context.secrets);
  supervisor = track(
    new ServerSupervisor({
      extensionPath: context.extensionPath,
      log,
      settings: () => settings.read(),
      workspaceFolder: () => vscode.workspace.workspaceFolders?.[0]?.uri.fsPath,
    }),
  );
  const server = supervisor;
  const statusBar = track(new ServerStatusBar(server, settings));
  const history = new HistoryStore(context.globalState, context.globalStorageUri);
  const api = track(new GenerationController(settings, server, apiKeys, history, statusBar));

  const panel: PanelHandle = track(registerPanel(context, { api, settings }, log));
  const preview: PreviewHandle = track(registerPreview(context, { api, settings }, log));

  track(
    settings.onDidChangeSettings((changed) => {
      const running = ['starting', 'ready', 'restarting'].includes(server.state);
      const reaction = serverReaction(changed, settings.read().backend, running);
      if (reaction === 'stop') {
        log.info('The backend is now a remote endpoint: stopping the local server.');
        void server.stop();
      } else if (reaction === 'offerRestart') {
        void vscode.window
          .showInformationMessage(
            'Design to Code: restart the local server to use the new model, device, precision or image detail.',
            'Restart Server',
          )
          .then(
            (choice) =>
              choice && server.restart().catch((error: unknown) => showGenerationError(api, error)),
          );
      }
    }),
  );
  const paste = registerImagePaste(
    api,
    () => settings.defaultTarget(),
    (error) => void showGenerationError(api, error),
  );
  if (paste) track(paste);
  for (const command of registerCommands({
    api,
    supervisor: server,
    settings,
    keys: apiKeys,
    log,
    panel: () => panel,
    preview: () => preview,
  })) {
    track(command);
  }

  return { api, server, settings, apiKeys, log };
}

/** Waits for the local server's process tree to end (VS Code waits for this promise). */
export async function deactivate(): Promise<void> {
  await supervisor?.stop();
  supervisor = undefined;
}
