/**
 * Who may talk to the server: requests must name a loopback host (a web page that rebinds its
 * DNS name to 127.0.0.1 still sends its own name in Host) and carry the bearer token.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import { isIP } from 'node:net';
import { ApiError } from './api-error';

/** The host part of a Host header: `[::1]:8080` -> `::1`, `localhost:80` -> `localhost`. */
export function hostName(header: string): string {
  const bracketed = header.match(/^\[([^\]]+)\](?::\d+)?$/);
  if (bracketed) return bracketed[1].toLowerCase();
  return header.replace(/:\d+$/, '').toLowerCase();
}

export function isLoopbackName(name: string): boolean {
  if (name === 'localhost' || name === '::1') return true;
  return isIP(name) === 4 && name.startsWith('127.');
}

/** `extraHosts`: the address the user chose with --host, when it is not a loopback one. */
export function checkHost(header: string | undefined, extraHosts: readonly string[] = []): void {
  const name = header ? hostName(header) : '';
  if (!isLoopbackName(name) && !extraHosts.includes(name)) {
    throw new ApiError(
      403,
      'permission_error',
      'forbidden_host',
      `Host "${header ?? ''}" is not allowed: connect through localhost, 127.0.0.1 or [::1]`,
    );
  }
}

export function checkBearer(header: string | undefined, token: string): void {
  const match = header?.match(/^Bearer\s+(.+)$/i);
  if (!match) {
    throw new ApiError(
      401,
      'authentication_error',
      'missing_token',
      'Missing bearer token: send "Authorization: Bearer <token>" with the token the server was started with',
    );
  }
  if (!sameSecret(match[1].trim(), token)) {
    throw new ApiError(401, 'authentication_error', 'invalid_token', 'Invalid bearer token');
  }
}

/** Constant-time comparison of equal-length digests, so timing reveals nothing of the token. */
function sameSecret(given: string, expected: string): boolean {
  const digest = (value: string) => createHash('sha256').update(value).digest();
  return timingSafeEqual(digest(given), digest(expected));
}
