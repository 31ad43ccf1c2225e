/**
 * Failures of a chat completion request, each with a message a person can act on and the
 * actions that fix it. Kept free of `vscode` so it can be tested on its own.
 */
export type FailureKind =
  | 'unreachable'
  | 'unauthorized'
  | 'modelNotFound'
  | 'tooLarge'
  | 'rateLimited'
  | 'loading'
  | 'serverError'
  | 'badRequest'
  | 'malformedStream'
  | 'stalled'
  | 'aborted';

export type FailureAction =
  'startServer' | 'setApiKey' | 'openSettings' | 'showLog' | 'chooseModel';

export class ChatFailure extends Error {
  constructor(
    readonly kind: FailureKind,
    message: string,
    readonly actions: FailureAction[],
    readonly status?: number,
  ) {
    super(message);
    this.name = 'ChatFailure';
  }
}

export interface FailureContext {
  endpoint: string;
  model: string;
  /** The local server (actions: start it, show its log) or a remote endpoint (settings, key). */
  local: boolean;
  /** Whether the request carried an API key (a 401 then means a wrong key, not a missing one). */
  keySent?: boolean;
}

/** The error body OpenAI-compatible servers send: {error: {message}} or {message} or text. */
function serverMessage(body: string): string {
  try {
    const parsed = JSON.parse(body) as { error?: { message?: string } | string; message?: string };
    if (typeof parsed.error === 'string') return parsed.error;
    return parsed.error?.message ?? parsed.message ?? '';
  } catch {
    return body.trim().slice(0, 300);
  }
}

/**
 * How servers say a text-only model was sent an image: vLLM ("is not a multimodal model",
 * "At most 0 image(s)"), llama.cpp ("image input is not supported ... mmproj"), LM Studio and
 * Ollama ("does not support images"), OpenAI-style ("Invalid content type. image_url is only
 * supported by certain models").
 */
function refusesImages(detail: string): boolean {
  return (
    /not a multimodal model|at most 0 image|mmproj/i.test(detail) ||
    /(image|vision)[^.]{0,40}(not supported|unsupported|only supported)/i.test(detail) ||
    /(does not|doesn't|not) support (images|image input|vision)/i.test(detail)
  );
}

function withDetail(message: string, detail: string): string {
  return detail ? `${message} (server said: ${detail})` : message;
}

export function failureFromStatus(
  status: number,
  body: string,
  context: FailureContext,
): ChatFailure {
  const detail = serverMessage(body);
  const where = context.local ? 'The local model server' : `The endpoint ${context.endpoint}`;
  if (!context.local && status >= 400 && refusesImages(detail)) {
    return new ChatFailure(
      'badRequest',
      withDetail(
        `The model "${context.model}" at ${context.endpoint} does not take images (HTTP ${status}). ` +
          'Choose a vision model such as Qwen3-VL (llama.cpp serves images only with --mmproj).',
        detail,
      ),
      ['chooseModel', 'openSettings'],
      status,
    );
  }
  switch (status) {
    case 401:
    case 403:
      return new ChatFailure(
        'unauthorized',
        withDetail(
          context.keySent === false && !context.local
            ? `${where} needs an API key (HTTP ${status}), and none is set for it. Set the API key for this endpoint.`
            : `${where} rejected the API key (HTTP ${status}). Set the API key for this endpoint.`,
          detail,
        ),
        context.local ? ['showLog'] : ['setApiKey', 'openSettings'],
        status,
      );
    case 404:
      return new ChatFailure(
        'modelNotFound',
        withDetail(
          `${where} does not serve the model "${context.model}" (HTTP 404). Choose a model it serves.`,
          detail,
        ),
        ['chooseModel', 'openSettings'],
        status,
      );
    case 413:
      return new ChatFailure(
        'tooLarge',
        withDetail(
          `The image is too large for ${where.toLowerCase()} (HTTP 413). Use a smaller image.`,
          detail,
        ),
        ['openSettings'],
        status,
      );
    case 429:
      return new ChatFailure(
        'rateLimited',
        withDetail(
          `${where} is rate limiting requests (HTTP 429). Wait a moment and try again.`,
          detail,
        ),
        context.local ? ['showLog'] : ['openSettings'],
        status,
      );
    case 503:
      return new ChatFailure(
        'loading',
        withDetail(
          `${where} is still loading the model (HTTP 503). Try again when it is ready.`,
          detail,
        ),
        context.local ? ['showLog'] : ['openSettings'],
        status,
      );
    default:
      if (status >= 500) {
        return new ChatFailure(
          'serverError',
          withDetail(`${where} failed while generating (HTTP ${status}).`, detail),
          context.local ? ['showLog'] : ['openSettings'],
          status,
        );
      }
      return new ChatFailure(
        'badRequest',
        withDetail(`${where} refused the request (HTTP ${status}).`, detail),
        ['openSettings'],
        status,
      );
  }
}

function errorCode(error: unknown): string | undefined {
  let current: unknown = error;
  for (let depth = 0; depth < 4 && current && typeof current === 'object'; depth++) {
    const code = (current as { code?: unknown }).code;
    if (typeof code === 'string') return code;
    current = (current as { cause?: unknown }).cause;
  }
  return undefined;
}

/** Maps a fetch() rejection (connection refused, DNS, reset) to a failure. */
export function failureFromNetwork(error: unknown, context: FailureContext): ChatFailure {
  if (error instanceof ChatFailure) return error;
  if (error instanceof Error && error.name === 'AbortError') {
    return new ChatFailure('aborted', 'Generation stopped.', []);
  }
  const code = errorCode(error) ?? (error instanceof Error ? error.message : String(error));
  if (context.local) {
    return new ChatFailure(
      'unreachable',
      `The local model server is not running or stopped answering (${code}). Start the server.`,
      ['startServer', 'showLog'],
    );
  }
  return new ChatFailure(
    'unreachable',
    `Cannot reach ${context.endpoint} (${code}). Check the endpoint URL in the settings.`,
    ['openSettings'],
  );
}

/** A stream that started and then sent nothing for `seconds` (a hung server or connection). */
export function stalledStream(seconds: number, context: FailureContext): ChatFailure {
  const where = context.local ? 'The local model server' : `The endpoint ${context.endpoint}`;
  return new ChatFailure(
    'stalled',
    `${where} stopped sending for ${seconds} s in the middle of the reply, so it was given up; the code so far is kept. Generate again${context.local ? ', or look at the server log' : ', or check the server'}.`,
    context.local ? ['showLog'] : ['openSettings'],
  );
}

export function malformedStream(reason: string, context: FailureContext): ChatFailure {
  const where = context.local ? 'The local model server' : `The endpoint ${context.endpoint}`;
  return new ChatFailure(
    'malformedStream',
    `${where} sent a reply that is not an OpenAI chat completion stream (${reason}).`,
    context.local ? ['showLog'] : ['openSettings'],
  );
}
