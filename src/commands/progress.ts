/** Runs a generation behind a cancellable VS Code progress notification (Cancel = Stop). */
import * as vscode from 'vscode';
import type { GenerationApi, GenerationResult } from '../generation/api';
import type { ProgressStage } from '../protocol/panel';

export function describeStage(progress: ProgressStage): string {
  switch (progress.stage) {
    case 'startingServer':
      return 'Starting the local model server…';
    case 'downloading':
      return `Downloading the model ${progress.percent.toFixed(0)}%${progress.file ? ` (${progress.file})` : ''}`;
    case 'building':
      return `Building the model ${progress.percent.toFixed(0)}%${progress.item ? ` (${progress.item})` : ''}`;
    case 'readingImage':
      return progress.percent === undefined
        ? 'Reading the image…'
        : `Reading the ${progress.reading ?? 'image'} ${progress.percent.toFixed(0)}%`;
    case 'generating':
      return `Generating: ${progress.tokens} tokens at ${progress.tokensPerSecond.toFixed(1)} tok/s`;
  }
}

export function withGenerationProgress(
  api: GenerationApi,
  title: string,
  run: (
    onProgress: (progress: ProgressStage) => void,
    requestId: string,
  ) => Promise<GenerationResult>,
): Promise<GenerationResult> {
  const requestId = `command-${Date.now().toString(36)}`;
  return Promise.resolve(
    vscode.window.withProgress(
      { location: vscode.ProgressLocation.Notification, title, cancellable: true },
      (progress, token) => {
        token.onCancellationRequested(() => api.stop(requestId));
        return run((stage) => progress.report({ message: describeStage(stage) }), requestId);
      },
    ),
  );
}
