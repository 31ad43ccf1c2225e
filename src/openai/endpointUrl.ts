/**
 * The base URL of an OpenAI-compatible API from what a user typed in the endpoint setting:
 * "http://127.0.0.1:11434" means its /v1, a URL with a path is taken as the base as is
 * (".../api/v1", Gemini's ".../v1beta/openai"), and a pasted ".../chat/completions" or
 * ".../models" is cut back to the base.
 */
export function apiBaseUrl(endpoint: string): string {
  const trimmed = endpoint.trim().replace(/\/+$/, '');
  const base = trimmed.replace(/\/(chat\/completions|models)$/, '');
  let path = '';
  try {
    path = new URL(base).pathname.replace(/\/+$/, '');
  } catch {
    // Not a URL: fetch reports it, with the endpoint in the message.
  }
  return path === '' ? `${base}/v1` : base;
}
