/** Every failure of a generation as a GenerationError: a message and the actions that fix it. */
import type { ErrorAction } from '../protocol/panel';
import { ChatFailure } from '../openai/errors';
import { ServerStartError } from '../server/supervisor';
import { GenerationError } from './api';

/** The command behind each error action. */
export const ACTION_COMMANDS: Record<ErrorAction, string> = {
  downloadModel: 'designToCode.downloadModel',
  showLog: 'designToCode.showServerLog',
  openSettings: 'designToCode.openSettings',
  restartServer: 'designToCode.restartServer',
  setApiKey: 'designToCode.setApiKey',
  startServer: 'designToCode.startServer',
  chooseModel: 'designToCode.chooseModel',
};

export function toGenerationError(error: unknown, crashed: boolean): GenerationError {
  if (error instanceof GenerationError) return error;
  if (crashed) {
    return new GenerationError(
      'The local model server stopped unexpectedly while generating; it is being restarted. ' +
        'The text already inserted stays. Try again in a moment.',
      ['showLog', 'restartServer'],
      'serverCrashed',
    );
  }
  if (error instanceof ChatFailure)
    return new GenerationError(error.message, error.actions, error.kind);
  if (error instanceof ServerStartError) {
    const actions: ErrorAction[] =
      error.kind === 'notFound' ? ['openSettings'] : ['showLog', 'downloadModel', 'openSettings'];
    return new GenerationError(error.message, actions, `server-${error.kind}`);
  }
  const message = error instanceof Error ? error.message : String(error);
  return new GenerationError(`Generation failed: ${message}`, ['showLog']);
}
