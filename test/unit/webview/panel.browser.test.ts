import { strict as assert } from 'node:assert';
import { readFileSync } from 'node:fs';
import type { HistoryEntry, PanelToHost } from '../../../src/protocol/panel';
import { READ_AHEAD_PAUSE_MS } from '../../../webview/panel/readAhead';
import { webviewSuiteHooks, type WebviewUnderTest } from './harness';

const PNG = readFileSync('test/fixtures/qwen3vl-tiny/images/small_40x30.png');
const image = { name: 'small.png', mimeType: 'image/png', base64: PNG.toString('base64') };
const entry: HistoryEntry = {
  id: 'h1',
  createdAt: Date.UTC(2026, 0, 2, 3, 4),
  target: 'react',
  instruction: 'dark theme',
  thumbnail: `data:image/png;base64,${image.base64}`,
  summary: 'LoginForm',
};

/** Pastes files into the page as the clipboard would. */
function pasteFiles(
  view: WebviewUnderTest,
  files: { name: string; type: string; bytes: number[] | number }[],
) {
  return view.page.evaluate(`(() => {
    const transfer = new DataTransfer();
    for (const f of ${JSON.stringify(files)}) {
      const bytes = typeof f.bytes === 'number' ? new Uint8Array(f.bytes) : new Uint8Array(f.bytes);
      transfer.items.add(new File([bytes], f.name, { type: f.type }));
    }
    document.dispatchEvent(new ClipboardEvent('paste', { clipboardData: transfer, bubbles: true }));
  })()`);
}

async function readAheads(view: WebviewUnderTest): Promise<PanelToHost[]> {
  return ((await view.posted()) as PanelToHost[]).filter((message) => message.type === 'readAhead');
}

/** Polled: the panel's CSP forbids the string evaluation a page-side wait uses. */
async function waitForReadAheads(view: WebviewUnderTest, count: number): Promise<void> {
  const started = Date.now();
  while ((await readAheads(view)).length < count) {
    assert.ok(Date.now() - started < 10_000, `no read-ahead number ${count} within 10 s`);
    await view.page.waitForTimeout(50);
  }
}

async function lastPosted(view: WebviewUnderTest): Promise<PanelToHost> {
  const posted = (await view.posted()) as PanelToHost[];
  return posted[posted.length - 1];
}

describe('panel webview in Chromium', function () {
  let view: WebviewUnderTest;
  const browser = webviewSuiteHooks('the panel', () => view, { noCspViolations: true });

  beforeEach(async () => {
    view = await browser.open('panel');
    await view.send({ type: 'init', defaultTarget: 'react', history: [entry], backend: 'local' });
  });

  it('starts with ready, takes the default target, lists the history', async () => {
    assert.deepEqual(await view.posted(), [{ type: 'ready' }]);
    assert.equal(await view.page.locator('#target').inputValue(), 'react');
    assert.equal(await view.page.locator('.history-summary').textContent(), 'LoginForm');
    assert.equal(await view.page.getByRole('button', { name: 'Generate' }).isDisabled(), true);
    await view.page.locator('.history-item').click();
    assert.deepEqual(await lastPosted(view), { type: 'openHistory', historyId: 'h1' });
  });

  it('posts a pasted image as base64 and shows it', async () => {
    await pasteFiles(view, [{ name: 'small.png', type: 'image/png', bytes: [...PNG] }]);
    await view.page.waitForFunction('window.__posted.length === 2');
    assert.deepEqual(await lastPosted(view), { type: 'imageChosen', image });
    assert.equal(await view.page.locator('.image-preview').isVisible(), true);
  });

  it('refuses an image over 20 MB before posting it, saying why', async () => {
    await pasteFiles(view, [{ name: 'huge.png', type: 'image/png', bytes: 21 * 1024 * 1024 }]);
    const error = view.page.getByRole('alert');
    await error.waitFor();
    assert.match((await error.textContent()) ?? '', /huge\.png is 21\.0 MB; the limit is 20 MB/);
    assert.deepEqual(await view.posted(), [{ type: 'ready' }]);
  });

  it('generates, shows honest progress, stops, and reports the result', async () => {
    await view.send({ type: 'image', image, embeddedDiagram: false, chosen: false });
    await view.page.selectOption('#target', 'tailwind');
    await view.page.fill('#instruction', '  use a sticky header ');
    await view.page.getByRole('button', { name: 'Generate' }).click();
    const generate = (await lastPosted(view)) as Extract<PanelToHost, { type: 'generate' }>;
    assert.deepEqual(
      { ...generate, requestId: typeof generate.requestId },
      {
        type: 'generate',
        requestId: 'string',
        image,
        target: 'tailwind',
        instruction: 'use a sticky header',
      },
    );
    const { requestId } = generate;
    const status = view.page.getByRole('status');
    await view.send({
      type: 'progress',
      requestId,
      progress: { stage: 'downloading', file: 'model.onnx', percent: 42.7 },
    });
    assert.equal(await status.textContent(), 'Downloading the model (model.onnx): 42%');
    assert.equal(await view.page.locator('progress').getAttribute('value'), '42.7');
    await view.send({
      type: 'progress',
      requestId,
      progress: { stage: 'generating', tokens: 120, tokensPerSecond: 8.25 },
    });
    assert.equal(await status.textContent(), 'Generating: 120 tokens at 8.3 tok/s');
    // Progress of some other request does not overwrite this one.
    await view.send({ type: 'progress', requestId: 'other', progress: { stage: 'readingImage' } });
    assert.equal(await status.textContent(), 'Generating: 120 tokens at 8.3 tok/s');

    await view.page.keyboard.press('Escape');
    assert.deepEqual(await lastPosted(view), { type: 'stop', requestId });
    await view.send({
      type: 'done',
      requestId,
      tokens: 300,
      tokensPerSecond: 12,
      warnings: ['Prettier could not parse line 3'],
    });
    assert.equal(await status.textContent(), 'Done: 300 tokens at 12 tok/s.');
    assert.equal(
      await view.page.locator('.warnings li').textContent(),
      'Prettier could not parse line 3',
    );
    assert.equal(await view.page.getByRole('button', { name: 'Generate' }).isEnabled(), true);
    assert.equal(await view.page.getByRole('button', { name: 'Stop' }).isDisabled(), true);
  });

  it('refines the last result with the instruction', async () => {
    await view.send({ type: 'image', image, embeddedDiagram: false, chosen: false });
    await view.page.getByRole('button', { name: 'Generate' }).click();
    const { requestId } = (await lastPosted(view)) as { requestId: string };
    await view.send({ type: 'done', requestId, tokens: 1, tokensPerSecond: 1, warnings: [] });
    const refine = view.page.getByRole('button', { name: 'Refine last result' });
    assert.equal(await refine.isDisabled(), true, 'refine without an instruction');
    await view.page.fill('#instruction', 'bigger buttons');
    await refine.click();
    const posted = (await lastPosted(view)) as Extract<PanelToHost, { type: 'refine' }>;
    assert.equal(posted.type, 'refine');
    assert.equal(posted.instruction, 'bigger buttons');
    assert.notEqual(posted.requestId, requestId);
  });

  it('reads a chosen image ahead after a short pause, then each new target or instruction', async () => {
    await view.send({ type: 'image', image, embeddedDiagram: false, chosen: false });
    await view.page.waitForTimeout(READ_AHEAD_PAUSE_MS + 100);
    assert.deepEqual(await readAheads(view), [], 'an image shown again to a reloaded view');
    const generate = (target: string, instruction: string) => ({
      type: 'readAhead',
      next: { kind: 'generate', target, instruction },
    });
    const started = Date.now();
    await view.send({ type: 'image', image, embeddedDiagram: false, chosen: true });
    await waitForReadAheads(view, 1);
    assert.ok(Date.now() - started >= READ_AHEAD_PAUSE_MS, 'sent after the pause');
    assert.deepEqual(await readAheads(view), [generate('react', '')]);
    await view.page.selectOption('#target', 'html');
    await waitForReadAheads(view, 2);
    await view.page.fill('#instruction', 'dark theme ');
    await waitForReadAheads(view, 3);
    assert.deepEqual(await readAheads(view), [
      generate('react', ''),
      generate('html', ''),
      generate('html', 'dark theme'),
    ]);
  });

  it('says while the generation is read ahead and when Generate will start at once, unless a request runs', async () => {
    const status = view.page.getByRole('status');
    await view.send({ type: 'readAhead', state: 'reading' });
    assert.equal(await status.textContent(), 'Reading ahead…');
    await view.send({ type: 'readAhead', state: 'reading', reading: 'image', percent: 37.5 });
    assert.equal(await status.textContent(), 'Reading ahead: image 37%');
    await view.send({ type: 'readAhead', state: 'reading', reading: 'prompt', percent: 100 });
    assert.equal(await status.textContent(), 'Reading ahead: prompt 100%');
    await view.send({ type: 'readAhead', state: 'read' });
    assert.equal(await status.textContent(), 'Ready: Generate starts at once.');
    await view.send({ type: 'image', image, embeddedDiagram: false, chosen: false });
    await view.page.getByRole('button', { name: 'Generate' }).click();
    await view.send({ type: 'readAhead', state: 'idle' });
    assert.equal(await status.textContent(), 'Starting…');
  });

  it('sends a refinement being typed ahead once the typing pauses', async () => {
    await view.send({ type: 'image', image, embeddedDiagram: false, chosen: true });
    await view.page.getByRole('button', { name: 'Generate' }).click();
    const { requestId } = (await lastPosted(view)) as { requestId: string };
    await view.send({ type: 'done', requestId, tokens: 1, tokensPerSecond: 1, warnings: [] });
    const before = (await readAheads(view)).length;
    const started = Date.now();
    await view.page.fill('#instruction', 'rounder corners ');
    await waitForReadAheads(view, before + 1);
    assert.ok(Date.now() - started >= READ_AHEAD_PAUSE_MS, 'sent once the typing paused');
    assert.deepEqual(await lastPosted(view), {
      type: 'readAhead',
      next: { kind: 'refine', instruction: 'rounder corners' },
    });
  });

  it('after a reload shows how the last generation ended, and can refine it', async () => {
    // The host replays the outcome to a webview that was unloaded while hidden.
    await view.send({
      type: 'done',
      requestId: 'earlier',
      tokens: 80,
      tokensPerSecond: 20,
      warnings: [],
    });
    assert.equal(await view.page.getByRole('status').textContent(), 'Done: 80 tokens at 20 tok/s.');
    await view.page.fill('#instruction', 'more padding');
    assert.equal(
      await view.page.getByRole('button', { name: 'Refine last result' }).isEnabled(),
      true,
    );
  });

  it('cannot refine before anything was generated', async () => {
    const fresh = await browser.open('panel');
    try {
      await fresh.send({ type: 'init', defaultTarget: 'html', history: [], backend: 'local' });
      await fresh.page.fill('#instruction', 'more padding');
      assert.equal(
        await fresh.page.getByRole('button', { name: 'Refine last result' }).isDisabled(),
        true,
      );
    } finally {
      await fresh.page.close();
    }
  });

  it('shows an error in place with buttons that run its actions', async () => {
    await view.send({ type: 'image', image, embeddedDiagram: false, chosen: false });
    await view.page.getByRole('button', { name: 'Generate' }).click();
    const { requestId } = (await lastPosted(view)) as { requestId: string };
    await view.send({
      type: 'error',
      requestId,
      message: 'The model is not downloaded yet.',
      actions: ['downloadModel', 'showLog'],
    });
    assert.match((await view.page.getByRole('alert').textContent()) ?? '', /not downloaded yet/);
    await view.page.getByRole('button', { name: 'Download model' }).click();
    assert.deepEqual(await lastPosted(view), { type: 'runAction', action: 'downloadModel' });
    assert.equal(await view.page.getByRole('button', { name: 'Generate' }).isEnabled(), true);
  });

  it('offers the exact diagram a Draw.io export carries', async () => {
    await view.send({ type: 'image', image, embeddedDiagram: true, chosen: true });
    await view.page.getByRole('button', { name: 'Open the exact diagram' }).click();
    assert.deepEqual(await lastPosted(view), { type: 'useEmbeddedDiagram' });
    await view.page.waitForTimeout(READ_AHEAD_PAUSE_MS + 100);
    assert.deepEqual(await readAheads(view), [], 'no model needed: nothing read ahead');
    assert.equal(await view.page.getByRole('button', { name: 'Generate' }).isEnabled(), true);
  });

  it('asks the host for a file dialog, by the button or Enter on the image zone', async () => {
    await view.page.getByRole('button', { name: 'Choose file…' }).click();
    assert.deepEqual(await lastPosted(view), { type: 'pickFile' });
    await view.page.getByRole('group', { name: /Image/ }).focus();
    await view.page.keyboard.press('Enter');
    assert.equal(
      ((await view.posted()) as PanelToHost[]).filter((m) => m.type === 'pickFile').length,
      2,
    );
  });
});
