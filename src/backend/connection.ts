/**
 * Where a request goes: the local server (started on demand, its bearer token) or the remote
 * endpoint from the settings (its API key from SecretStorage).
 */
import type { ProgressStage } from '../protocol/panel';
import type { ApiKeyStore } from '../secrets/apiKey';
import type { Settings } from '../settings/schema';
import type { ServerSupervisor } from '../server/supervisor';

export interface Connection {
  endpoint: string;
  apiKey?: string;
  model: string;
  local: boolean;
}

export async function connect(
  settings: Settings,
  supervisor: ServerSupervisor,
  keys: ApiKeyStore,
  onProgress: (progress: ProgressStage) => void,
): Promise<Connection> {
  if (settings.backend === 'local') {
    const server = await supervisor.ensureStarted(onProgress);
    return { endpoint: server.endpoint, apiKey: server.token, model: server.model, local: true };
  }
  return {
    endpoint: settings.endpoint,
    apiKey: await keys.get(settings.endpoint),
    model: settings.model,
    local: false,
  };
}
