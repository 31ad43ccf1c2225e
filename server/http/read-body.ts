/** Reads a JSON request body, refusing oversized bodies early and naming what is wrong. */
import type { IncomingMessage } from 'node:http';
import { ApiError, badRequest, clientClosed } from './api-error';

export async function readJsonBody(request: IncomingMessage, maxBytes: number): Promise<unknown> {
  const type = request.headers['content-type'];
  if (type && !/^application\/json\b/i.test(type)) {
    throw new ApiError(
      415,
      'invalid_request_error',
      'unsupported_media_type',
      `Content-Type must be application/json, not ${type}`,
    );
  }
  const tooLarge = () =>
    new ApiError(
      413,
      'invalid_request_error',
      'request_too_large',
      `The request body is larger than the limit of ${maxBytes} bytes; send smaller or fewer images`,
    );
  const declared = Number(request.headers['content-length']);
  if (Number.isFinite(declared) && declared > maxBytes) throw tooLarge();

  const chunks: Buffer[] = [];
  let size = 0;
  try {
    for await (const chunk of request as AsyncIterable<Buffer>) {
      size += chunk.length;
      if (size > maxBytes) throw tooLarge();
      chunks.push(chunk);
    }
  } catch (error) {
    if (error instanceof ApiError) throw error;
    // The client went away while sending: nobody is left to answer, and nothing broke here.
    throw new ApiError(
      499,
      'invalid_request_error',
      'client_closed',
      'The client closed the connection',
    );
  }
  const text = Buffer.concat(chunks).toString('utf8');
  if (text.trim() === '')
    throw badRequest('invalid_json', 'The request body is empty; send a JSON object');
  try {
    return JSON.parse(text);
  } catch (error) {
    throw badRequest(
      'invalid_json',
      `The request body is not valid JSON: ${(error as Error).message}`,
    );
  }
}
