import { strict as assert } from 'node:assert';
import { mkdirSync, readFileSync } from 'node:fs';
import { PageServer } from '../../../src/preview/pageServer';
import { previewCspAdditions } from '../../../src/preview/previewCsp';
import { inlineTailwind } from '../../../src/preview/tailwind';
import { webviewSuiteHooks, type WebviewUnderTest } from './harness';

const DIAGRAM = `<mxfile><diagram id="d1" name="Page-1"><mxGraphModel dx="800" dy="600" grid="1" gridSize="10"><root>
<mxCell id="0"/><mxCell id="1" parent="0"/>
<mxCell id="2" value="Start" style="rounded=0;whiteSpace=wrap;html=1;fillColor=#dae8fc;" vertex="1" parent="1"><mxGeometry x="20" y="20" width="120" height="50" as="geometry"/></mxCell>
<mxCell id="3" value="End" style="ellipse;whiteSpace=wrap;html=1;fillColor=#d5e8d4;" vertex="1" parent="1"><mxGeometry x="300" y="20" width="120" height="50" as="geometry"/></mxCell>
<mxCell id="4" value="Check?" style="rhombus;whiteSpace=wrap;html=1;fillColor=#fff2cc;" vertex="1" parent="1"><mxGeometry x="140" y="120" width="120" height="80" as="geometry"/></mxCell>
<mxCell id="5" edge="1" parent="1" source="2" target="3" style="endArrow=classic;html=1;"><mxGeometry relative="1" as="geometry"/></mxCell>
<mxCell id="6" edge="1" parent="1" source="2" target="4" style="endArrow=classic;html=1;"><mxGeometry relative="1" as="geometry"/></mxCell>
</root></mxGraphModel></diagram></mxfile>`;

/** A 1x1 red PNG. */
const RED_PIXEL =
  'data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8DwHwAFBQIAX8jx0gAAAABJRU5ErkJggg==';

describe('preview webview in Chromium', function () {
  let view: WebviewUnderTest;
  const browser = webviewSuiteHooks('the preview', () => view);

  beforeEach(async () => {
    view = await browser.open('preview', previewCspAdditions([]));
  });

  it('says it is ready', async () => {
    assert.deepEqual(await view.posted(), [{ type: 'ready' }]);
  });

  it('renders HTML in a sandboxed srcdoc frame, styles applied and scripts not run', async () => {
    const html =
      '<style>h1 { color: rgb(255, 0, 0) }</style><h1>Hello preview</h1>' +
      '<script>document.body.append(document.createElement("hr"))</script>';
    await view.send({ type: 'render', title: 'page.html', content: { kind: 'html', html } });
    const frame = view.page.frameLocator('iframe');
    await frame.locator('h1').waitFor();
    assert.equal(await frame.locator('h1').textContent(), 'Hello preview');
    const color = await frame.locator('h1').evaluate((h1) => getComputedStyle(h1).color);
    assert.equal(color, 'rgb(255, 0, 0)');
    assert.equal(await frame.locator('hr').count(), 0, 'the page script ran');
    assert.equal(await view.page.locator('iframe').getAttribute('sandbox'), '');
    assert.equal(await view.page.locator('.title').textContent(), 'page.html');
  });

  it('sizes the page to the chosen device width', async () => {
    await view.send({ type: 'render', title: 'p', content: { kind: 'html', html: '<p>x</p>' } });
    // By default the page takes the view's width, unscaled.
    assert.equal(await view.page.locator('#device').inputValue(), 'fit');
    const fitted = await view.page.locator('.page').evaluate((page) => ({
      layout: (page as HTMLElement).offsetWidth,
      shown: page.getBoundingClientRect().width,
    }));
    assert.ok(fitted.layout > 900 && fitted.layout === fitted.shown, JSON.stringify(fitted));
    await view.page.selectOption('#device', 'mobile');
    const width = await view.page.locator('iframe').evaluate((frame) => frame.clientWidth);
    assert.equal(width, 375);
    // Desktop (1280) is wider than the 1000 px view: scaled to fit, laid out at full width.
    await view.page.selectOption('#device', 'desktop');
    const box = await view.page.locator('.page').evaluate((page) => ({
      layout: (page as HTMLElement).offsetWidth,
      shown: page.getBoundingClientRect().width,
    }));
    assert.equal(box.layout, 1280);
    assert.ok(box.shown < 1000, `shown ${box.shown} px wide`);
  });

  it('overlays the source image with the chosen opacity, or shows it beside', async () => {
    await view.send({ type: 'render', title: 'p', content: { kind: 'html', html: '<p>x</p>' } });
    await view.send({ type: 'sourceImage', image: { name: 'mock.png', dataUrl: RED_PIXEL } });
    assert.equal(await view.page.locator('img.beside').isVisible(), true);
    await view.page.selectOption('#image-mode', 'overlay');
    await view.page.locator('#opacity').fill('30');
    const overlay = view.page.locator('img.overlay');
    assert.equal(await overlay.isVisible(), true);
    assert.equal(await overlay.evaluate((img) => img.style.opacity), '0.3');
    assert.equal(await view.page.locator('img.beside').isVisible(), false);
  });

  it('renders Draw.io XML with the offline viewer, fetching nothing remote', async () => {
    await view.send({
      type: 'render',
      title: 'd.drawio',
      content: { kind: 'drawio', xml: DIAGRAM },
    });
    const diagram = view.page.locator('.diagram svg');
    await diagram.first().waitFor({ timeout: 20000 });
    const text = await view.page.locator('.diagram').innerText();
    for (const label of ['Start', 'End', 'Check?'])
      assert.match(text, new RegExp(label.replace('?', '\\?')));
    const shapes = await view.page.locator('.diagram svg g ellipse, .diagram svg g path').count();
    assert.ok(shapes >= 4, `${shapes} shapes drawn`);
    mkdirSync('test-results', { recursive: true });
    await view.page.screenshot({ path: 'test-results/preview-drawio.png' });
    // The viewer only tries to load MathJax from its (local) path, which the CSP blocks.
    assert.deepEqual(
      view.violations.filter((violation) => !violation.includes('/drawio/math/')),
      [],
    );
  });

  it('reports XML that is not a diagram instead of rendering it', async () => {
    await view.send({
      type: 'render',
      title: 'x',
      content: { kind: 'drawio', xml: '<svg></svg>' },
    });
    await view.send({
      type: 'render',
      title: 'y',
      content: { kind: 'drawio', xml: '<mxfile><diagram>' },
    });
    await view.page.waitForFunction(
      () => (window as unknown as { __posted: unknown[] }).__posted.length >= 3,
    );
    const posted = (await view.posted()) as { type: string; message?: string }[];
    assert.equal(posted[1].type, 'renderFailed');
    assert.match(posted[1].message!, /root element is <svg>/);
    assert.match(posted[2].message!, /does not parse/);
    assert.match((await view.page.locator('.message').textContent()) ?? '', /does not parse/);
  });

  it("runs the page's scripts when allowed: served by the page server, in its own sandboxed origin", async () => {
    const server = await PageServer.start();
    try {
      const origin = new URL(server.url).origin;
      await view.page.close();
      view = await browser.open('preview', previewCspAdditions([origin]), [origin]);
      server.setPage(
        '<style>p { color: rgb(0, 128, 0) }</style><p id="out">waiting</p><script>' +
          'let parentReadable = true; try { parent.document.body } catch { parentReadable = false }' +
          '; document.getElementById("out").textContent = "ran, parent readable: " + parentReadable;' +
          '</script>',
      );
      await view.send({
        type: 'render',
        title: 's',
        content: { kind: 'served', url: server.url, revision: 1 },
      });
      const out = view.page.frameLocator('iframe').locator('#out');
      await out.filter({ hasText: 'ran' }).waitFor({ timeout: 10000 });
      assert.equal(await out.textContent(), 'ran, parent readable: false');
      assert.equal(await out.evaluate((p) => getComputedStyle(p).color), 'rgb(0, 128, 0)');
      assert.equal(await view.page.locator('iframe').getAttribute('sandbox'), 'allow-scripts');
      assert.deepEqual(view.violations, []);
    } finally {
      await server.close();
    }
  });

  it('ignores messages that the rendered page posts to the preview', async () => {
    const server = await PageServer.start();
    try {
      const origin = new URL(server.url).origin;
      await view.page.close();
      view = await browser.open('preview', previewCspAdditions([origin]), [origin]);
      const forged = {
        type: 'render',
        title: 'forged',
        content: { kind: 'empty', message: 'forged' },
      };
      server.setPage(
        `<p id="out">waiting</p><script>parent.postMessage(${JSON.stringify(forged)}, '*');` +
          'document.getElementById("out").textContent = "posted";</script>',
      );
      await view.send({
        type: 'render',
        title: 'generated.html',
        content: { kind: 'served', url: server.url, revision: 1 },
      });
      await view.page
        .frameLocator('iframe')
        .locator('#out')
        .filter({ hasText: 'posted' })
        .waitFor({ timeout: 10000 });
      await new Promise((resolve) => setTimeout(resolve, 500));
      assert.equal(await view.page.locator('.title').textContent(), 'generated.html');
    } finally {
      await server.close();
    }
  });

  it('styles a Tailwind page offline, with scripts off and with the page server', async () => {
    const page =
      '<!DOCTYPE html><html><head><script src="https://cdn.tailwindcss.com"></script></head>' +
      '<body><div id="box" class="bg-blue-500 p-4 rounded-lg">Tailwind</div></body></html>';
    const indexCss = readFileSync('node_modules/tailwindcss/index.css', 'utf8');
    const { html } = await inlineTailwind(page, indexCss);
    const styleOf = async () =>
      view.page
        .frameLocator('iframe')
        .locator('#box')
        .evaluate((box) => {
          const style = getComputedStyle(box);
          return { background: style.backgroundColor, padding: style.paddingLeft };
        });
    // Tailwind's blue-500 is oklch(62.3% 0.214 259.815); unstyled, the box is transparent.
    const blue = /^oklch\(0\.623 0\.214 259\.81\d*\)$|^rgb\(4[3-9], 1[23]\d, 2[45]\d\)$/;

    await view.send({ type: 'render', title: 't.html', content: { kind: 'html', html } });
    await view.page.frameLocator('iframe').locator('#box').waitFor();
    let style = await styleOf();
    assert.match(style.background, blue);
    assert.equal(style.padding, '16px');

    const server = await PageServer.start();
    try {
      const origin = new URL(server.url).origin;
      await view.page.close();
      view = await browser.open('preview', previewCspAdditions([origin]), [origin]);
      server.setPage(html);
      await view.send({
        type: 'render',
        title: 't.html',
        content: { kind: 'served', url: server.url, revision: 1 },
      });
      await view.page.frameLocator('iframe').locator('#box').waitFor();
      style = await styleOf();
      assert.match(style.background, blue);
      assert.equal(style.padding, '16px');
      assert.deepEqual(view.violations, []);
    } finally {
      await server.close();
    }
  });

  it('shows the reason when there is nothing to preview', async () => {
    await view.send({
      type: 'render',
      title: 'P',
      content: { kind: 'empty', message: 'Open an HTML document.' },
    });
    assert.equal(await view.page.locator('.message').textContent(), 'Open an HTML document.');
  });
});
