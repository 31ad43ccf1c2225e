/** GET /v1/models of an OpenAI-compatible endpoint: the ids of the models it serves. */
import {
  failureFromNetwork,
  failureFromStatus,
  malformedStream,
  type FailureContext,
} from './errors';
import { apiBaseUrl } from './endpointUrl';

/** An endpoint that has not answered the model list by then is treated as unreachable. */
const LIST_TIMEOUT_MS = 15_000;

export async function listModels(
  endpoint: string,
  apiKey: string | undefined,
  local: boolean,
  timeoutMs = LIST_TIMEOUT_MS,
): Promise<string[]> {
  const url = `${apiBaseUrl(endpoint)}/models`;
  const context: FailureContext = { endpoint, model: '', local, keySent: Boolean(apiKey) };
  let response: Response;
  try {
    response = await fetch(url, {
      headers: apiKey ? { authorization: `Bearer ${apiKey}` } : {},
      signal: AbortSignal.timeout(timeoutMs),
    });
  } catch (error) {
    throw failureFromNetwork(error, context);
  }
  if (!response.ok)
    throw failureFromStatus(response.status, await response.text().catch(() => ''), context);
  const body = (await response.json().catch(() => undefined)) as
    { data?: { id?: unknown }[] } | undefined;
  if (!body || !Array.isArray(body.data))
    throw malformedStream('the model list has no data array', context);
  return body.data.map((model) => model.id).filter((id): id is string => typeof id === 'string');
}
