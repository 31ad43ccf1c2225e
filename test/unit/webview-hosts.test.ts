import { strict as assert } from 'node:assert';
import { buildCsp, escapeAttribute, makeNonce, webviewPage } from '../../src/panel/webviewPage';
import { PageServer, SERVED_PAGE_CSP } from '../../src/preview/pageServer';
import { expectedPreviewKind, isDiagramXml, previewKindOf } from '../../src/preview/previewKind';
import { previewCspAdditions } from '../../src/preview/previewCsp';

const SOURCE = 'https://file+.vscode-resource.vscode-cdn.net';

function directives(csp: string): Map<string, string[]> {
  return new Map(
    csp.split(';').map((part) => {
      const [name, ...sources] = part.trim().split(/\s+/);
      return [name, sources] as [string, string[]];
    }),
  );
}

describe('webview page and its Content Security Policy', () => {
  it('allows nothing by default, scripts only with the nonce, no remote origin', () => {
    const csp = directives(buildCsp(SOURCE, 'abc'));
    assert.deepEqual(csp.get('default-src'), ["'none'"]);
    assert.deepEqual(csp.get('script-src'), ["'nonce-abc'"]);
    assert.deepEqual(csp.get('style-src'), [SOURCE]);
    assert.deepEqual(csp.get('img-src'), [SOURCE, 'data:', 'blob:']);
    assert.equal(csp.has('frame-src'), false);
    assert.doesNotMatch(buildCsp(SOURCE, 'abc'), /unsafe-eval|https?:\/\/(?!file\+)|\*/);
  });

  it("the preview adds inline styles and the page server's frame, never inline scripts", () => {
    const csp = directives(buildCsp(SOURCE, 'n', previewCspAdditions(['http://127.0.0.1:4321'])));
    assert.deepEqual(csp.get('style-src'), [SOURCE, "'unsafe-inline'"]);
    assert.deepEqual(csp.get('frame-src'), ['http://127.0.0.1:4321']);
    assert.deepEqual(csp.get('script-src'), ["'nonce-n'"]);
    assert.equal(
      directives(buildCsp(SOURCE, 'n', previewCspAdditions([]))).has('frame-src'),
      false,
    );
  });

  it('makes a fresh 128-bit nonce each time', () => {
    const nonces = new Set(Array.from({ length: 50 }, makeNonce));
    assert.equal(nonces.size, 50);
    for (const nonce of nonces) assert.equal(Buffer.from(nonce, 'base64').length, 16);
  });

  it('puts the policy, the nonce and escaped values into the page', () => {
    const html = webviewPage({
      title: 'A "title" <b>',
      cspSource: SOURCE,
      nonce: 'n0nce',
      scriptUri: `${SOURCE}/dist/webview/panel.js`,
      styleUris: [`${SOURCE}/media/panel.css`],
      data: { 'drawio-base': 'x"><script>alert(1)</script>' },
    });
    assert.match(html, /<meta http-equiv="Content-Security-Policy" content="default-src 'none';/);
    assert.match(html, /<script nonce="n0nce" src="[^"]+\/dist\/webview\/panel\.js"><\/script>/);
    assert.match(html, /<link rel="stylesheet" href="[^"]+\/media\/panel\.css">/);
    assert.equal((html.match(/<script/g) ?? []).length, 1);
    assert.match(html, /data-drawio-base="x&quot;&gt;&lt;script&gt;/);
    assert.equal(escapeAttribute(`&"<>`), '&amp;&quot;&lt;&gt;');
  });
});

describe('preview kind of a document', () => {
  const doc = (languageId: string, fileName: string, text = '') => ({
    languageId,
    fileName,
    getText: () => text,
  });

  it('previews HTML documents as pages', () => {
    assert.equal(previewKindOf(doc('html', '/w/index.html')), 'html');
    assert.equal(previewKindOf(doc('html', 'Untitled-1')), 'html');
    assert.equal(previewKindOf(doc('plaintext', '/w/page.htm')), 'html');
  });

  it('previews .drawio files and XML with an mxfile or mxGraphModel root as diagrams', () => {
    assert.equal(previewKindOf(doc('xml', '/w/flow.drawio')), 'drawio');
    assert.equal(previewKindOf(doc('plaintext', '/w/flow.drawio.xml')), 'drawio');
    assert.equal(
      previewKindOf(doc('xml', 'Untitled-2', '<mxfile host="x"><diagram/></mxfile>')),
      'drawio',
    );
    const declared =
      '<?xml version="1.0"?>\n<!-- generated -->\n<mxGraphModel><root/></mxGraphModel>';
    assert.equal(previewKindOf(doc('xml', 'Untitled-3', declared)), 'drawio');
  });

  it('previews an empty XML document a generation is about to fill as a diagram', () => {
    assert.equal(expectedPreviewKind(doc('xml', 'Untitled-4', '')), 'drawio');
    assert.equal(expectedPreviewKind(doc('xml', 'Untitled-4', '<project/>')), undefined);
    assert.equal(expectedPreviewKind(doc('html', 'Untitled-5', '')), 'html');
    assert.equal(expectedPreviewKind(doc('javascriptreact', 'Untitled-6', '')), undefined);
  });

  it('does not preview other documents', () => {
    assert.equal(previewKindOf(doc('xml', '/w/pom.xml', '<project/>')), undefined);
    assert.equal(previewKindOf(doc('javascriptreact', '/w/App.jsx', '<div/>')), undefined);
    assert.equal(isDiagramXml('<mxfileish/>'), false);
    assert.equal(isDiagramXml('text <mxfile>'), false);
  });
});

describe('preview page server', () => {
  let server: PageServer;
  before(async () => {
    server = await PageServer.start();
  });
  after(() => server.close());

  it('serves the current page on loopback, with its own CSP, under the session token', async () => {
    const url = new URL(server.url);
    assert.equal(url.hostname, '127.0.0.1');
    assert.match(url.pathname, /^\/[A-Za-z0-9_-]{32}\/$/);
    server.setPage('<p>first</p>');
    server.setPage('<script>document.title = "x"</script><p>second</p>');
    const response = await fetch(`${server.url}?v=2`);
    assert.equal(response.status, 200);
    assert.equal(response.headers.get('content-security-policy'), SERVED_PAGE_CSP);
    assert.equal(response.headers.get('cache-control'), 'no-store');
    assert.equal(await response.text(), '<script>document.title = "x"</script><p>second</p>');
    assert.match(SERVED_PAGE_CSP, /script-src 'unsafe-inline'/);
    assert.doesNotMatch(SERVED_PAGE_CSP, /https?:|\*/);
  });

  it('answers nothing without the token, and only GET', async () => {
    const origin = new URL(server.url).origin;
    for (const path of ['/', '/index.html', '/wrong-token/']) {
      assert.equal((await fetch(origin + path)).status, 404, path);
    }
    assert.equal((await fetch(server.url, { method: 'POST', body: 'x' })).status, 405);
  });

  it('gives each session its own token and port', async () => {
    const other = await PageServer.start();
    try {
      assert.notEqual(other.url, server.url);
      assert.equal(
        (await fetch(other.url.replace(/\/[^/]+\/$/, new URL(server.url).pathname))).status,
        404,
      );
    } finally {
      await other.close();
    }
  });
});
