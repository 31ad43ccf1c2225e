/**
 * One error type for everything the engine refuses or fails at, with a stable code so the
 * CLI and the HTTP server can map it to an exit status / HTTP status and a helpful message.
 */
export type EngineErrorCode =
  | 'model_not_found' // checkpoint directory or a required file is missing
  | 'bad_checkpoint' // config / safetensors / tokenizer present but invalid (truncated, wrong model_type, missing or mis-shaped tensor)
  | 'bad_image' // bytes that are not a decodable image, or an unsupported format
  | 'image_too_large' // more pixels / bytes than allowed
  | 'bad_request' // malformed messages or options
  | 'context_overflow' // prompt (plus requested tokens) longer than the context
  | 'device_unavailable' // execution provider cannot load
  | 'cancelled' // AbortSignal fired
  | 'disk_full' // writing the ONNX cache failed for lack of space
  | 'internal';

export class EngineError extends Error {
  constructor(
    readonly code: EngineErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'EngineError';
  }
}

export function isEngineError(error: unknown, code?: EngineErrorCode): error is EngineError {
  return error instanceof EngineError && (code === undefined || error.code === code);
}
