/**
 * A loopback HTTP server for previews that run the page's own scripts. A `srcdoc` frame
 * inherits the webview's CSP, which forbids inline scripts; a page from this server has its
 * own origin and its own CSP. Bound to 127.0.0.1 on a random port; the only path it answers
 * carries an unguessable per-session token, so other local programs and web pages (DNS
 * rebinding included) cannot read what it serves.
 */
import { randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

/** Inline scripts and styles of the page itself; nothing from any network, not even loopback. */
export const SERVED_PAGE_CSP = [
  "default-src 'none'",
  "script-src 'unsafe-inline'",
  "style-src 'unsafe-inline'",
  'img-src data: blob:',
  'font-src data:',
  'media-src data: blob:',
  "base-uri 'none'",
  "form-action 'none'",
].join('; ');

export class PageServer {
  private page = '';

  private constructor(
    private readonly server: Server,
    private readonly token: string,
  ) {
    server.on('request', (request, response) => this.answer(request, response));
  }

  /** Starts listening on 127.0.0.1 at a port the system picks. */
  static async start(): Promise<PageServer> {
    const server = createServer();
    const pageServer = new PageServer(server, randomBytes(24).toString('base64url'));
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, '127.0.0.1', () => {
        server.off('error', reject);
        resolve();
      });
    });
    return pageServer;
  }

  /** Where the current page is served (before `vscode.env.asExternalUri`). */
  get url(): string {
    const { port } = this.server.address() as AddressInfo;
    return `http://127.0.0.1:${port}/${this.token}/`;
  }

  setPage(html: string): void {
    this.page = html;
  }

  close(): Promise<void> {
    this.server.closeAllConnections();
    return new Promise((resolve) => this.server.close(() => resolve()));
  }

  private answer(request: IncomingMessage, response: ServerResponse): void {
    const path = (request.url ?? '').split('?')[0];
    if (path !== `/${this.token}/`) {
      response.writeHead(404, { 'Content-Type': 'text/plain' }).end('Not found');
    } else if (request.method !== 'GET' && request.method !== 'HEAD') {
      response.writeHead(405, { Allow: 'GET, HEAD', 'Content-Type': 'text/plain' }).end();
    } else {
      response.writeHead(200, {
        'Content-Type': 'text/html; charset=utf-8',
        'Content-Security-Policy': SERVED_PAGE_CSP,
        'Cache-Control': 'no-store',
        'X-Content-Type-Options': 'nosniff',
        'Referrer-Policy': 'no-referrer',
      });
      response.end(request.method === 'HEAD' ? undefined : this.page);
    }
  }
}
