/**
 * The HTML page of a webview (the panel's and the preview's): a strict Content Security
 * Policy with a per-load nonce, the extension's stylesheets and one script bundle. Pure, so
 * that the policy can be checked in unit tests.
 */
import { randomBytes } from 'node:crypto';

/** CSP directives a page may widen beyond the strict default. */
export interface CspAdditions {
  'img-src'?: string[];
  'style-src'?: string[];
  'font-src'?: string[];
  'frame-src'?: string[];
}

export interface WebviewPageOptions {
  title: string;
  /** `webview.cspSource`: the origin of the extension's local resources. */
  cspSource: string;
  nonce: string;
  scriptUri: string;
  styleUris: string[];
  additions?: CspAdditions;
  /** data-* attributes on <body>, for configuration the script reads at start. */
  data?: Record<string, string>;
}

/** A fresh nonce for each page load: 128 random bits. */
export function makeNonce(): string {
  return randomBytes(16).toString('base64');
}

/** Nothing is allowed unless listed: scripts only with the nonce, no remote origins. */
export function buildCsp(cspSource: string, nonce: string, additions: CspAdditions = {}): string {
  const directives: Record<string, string[]> = {
    'default-src': ["'none'"],
    'img-src': [cspSource, 'data:', 'blob:', ...(additions['img-src'] ?? [])],
    'style-src': [cspSource, ...(additions['style-src'] ?? [])],
    'font-src': [cspSource, ...(additions['font-src'] ?? [])],
    'script-src': [`'nonce-${nonce}'`],
    'base-uri': ["'none'"],
    'form-action': ["'none'"],
  };
  if (additions['frame-src']?.length) directives['frame-src'] = additions['frame-src'];
  return Object.entries(directives)
    .map(([name, sources]) => `${name} ${sources.join(' ')}`)
    .join('; ');
}

export function escapeAttribute(value: string): string {
  return value
    .replace(/&/g, '&amp;')
    .replace(/"/g, '&quot;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;');
}

export function webviewPage(options: WebviewPageOptions): string {
  const csp = buildCsp(options.cspSource, options.nonce, options.additions);
  const styles = options.styleUris
    .map((uri) => `<link rel="stylesheet" href="${escapeAttribute(uri)}">`)
    .join('\n    ');
  const data = Object.entries(options.data ?? {})
    .map(([key, value]) => ` data-${key}="${escapeAttribute(value)}"`)
    .join('');
  return `<!DOCTYPE html>
<html lang="en">
  <head>
    <meta charset="UTF-8">
    <meta http-equiv="Content-Security-Policy" content="${escapeAttribute(csp)}">
    <meta name="viewport" content="width=device-width, initial-scale=1.0">
    ${styles}
    <title>${escapeAttribute(options.title)}</title>
  </head>
  <body${data}>
    <div id="app"></div>
    <script nonce="${escapeAttribute(options.nonce)}" src="${escapeAttribute(options.scriptUri)}"></script>
  </body>
</html>
`;
}
