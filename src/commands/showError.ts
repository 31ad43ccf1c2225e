/** Shows a generation failure with buttons for the actions that fix it. */
import * as vscode from 'vscode';
import { GenerationError, type GenerationApi } from '../generation/api';
import type { ErrorAction } from '../protocol/panel';

export const ACTION_LABELS: Record<ErrorAction, string> = {
  downloadModel: 'Download Model',
  showLog: 'Show Log',
  openSettings: 'Open Settings',
  restartServer: 'Restart Server',
  setApiKey: 'Set API Key',
  startServer: 'Start Server',
  chooseModel: 'Choose Model',
};

export async function showGenerationError(api: GenerationApi, error: unknown): Promise<void> {
  const actions = error instanceof GenerationError ? error.actions : [];
  const message = error instanceof Error ? error.message : String(error);
  const choice = await vscode.window.showErrorMessage(
    `Design to Code: ${message}`,
    ...actions.map((action) => ACTION_LABELS[action]),
  );
  const action = actions.find((candidate) => ACTION_LABELS[candidate] === choice);
  if (action) await api.runAction(action);
}
