/**
 * Errors as OpenAI's API sends them (`{"error":{message,type,code,param}}`) with the HTTP status
 * that goes with them, and the mapping from the engine's error codes to those.
 */
import { randomUUID } from 'node:crypto';
import { isEngineError } from '../engine/errors';

export type ApiErrorType =
  | 'invalid_request_error'
  | 'authentication_error'
  | 'permission_error'
  | 'not_found_error'
  | 'rate_limit_error'
  | 'server_unavailable'
  | 'timeout_error'
  | 'server_error';

export interface ApiErrorBody {
  error: { message: string; type: ApiErrorType; code: string | null; param: string | null };
}

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly type: ApiErrorType,
    readonly code: string,
    message: string,
    readonly param: string | null = null,
  ) {
    super(message);
    this.name = 'ApiError';
  }

  toJSON(): ApiErrorBody {
    return {
      error: { message: this.message, type: this.type, code: this.code, param: this.param },
    };
  }
}

export const badRequest = (code: string, message: string, param: string | null = null) =>
  new ApiError(400, 'invalid_request_error', code, message, param);

/** The client went away: nobody is left to answer (499 is nginx's name for it). */
export const clientClosed = () =>
  new ApiError(499, 'invalid_request_error', 'client_closed', 'The client closed the connection');

/**
 * Any failure becomes an ApiError. Engine refusals keep their message (it says what to change);
 * anything unexpected becomes a 500 whose reference id is also written to the log, so a user
 * can report it without the server leaking internals.
 */
export function toApiError(
  error: unknown,
  log: (reference: string, error: unknown) => void,
): ApiError {
  if (error instanceof ApiError) return error;
  if (isEngineError(error)) {
    switch (error.code) {
      case 'bad_image':
        return badRequest('invalid_image', error.message, 'messages');
      case 'image_too_large':
        return new ApiError(
          413,
          'invalid_request_error',
          'image_too_large',
          error.message,
          'messages',
        );
      case 'bad_request':
        return badRequest('invalid_request', error.message);
      case 'context_overflow':
        return badRequest('context_length_exceeded', error.message, 'messages');
      case 'cancelled':
        return new ApiError(499, 'invalid_request_error', 'cancelled', error.message);
      default:
        break;
    }
  }
  const reference = randomUUID().slice(0, 8);
  log(reference, error);
  return new ApiError(
    500,
    'server_error',
    'internal_error',
    `The server failed while handling the request (log reference ${reference}); see the server log.`,
  );
}
