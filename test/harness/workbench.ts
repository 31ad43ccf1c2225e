// What a user does in the VS Code workbench, as Playwright steps: wait for it to load, use
// the command palette, find a webview's content frame, read the active editor.
import type { Frame, Page } from 'playwright-core';

export async function waitForWorkbench(page: Page, timeoutMs = 90_000): Promise<void> {
  await page.locator('.monaco-workbench').waitFor({ state: 'visible', timeout: timeoutMs });
  await page.locator('.part.statusbar').waitFor({ state: 'visible', timeout: timeoutMs });
  // The remote extension host reports in the status bar once connected.
  await page.locator('.part.editor').waitFor({ state: 'visible', timeout: timeoutMs });
}

async function openPalette(page: Page, query: string): Promise<void> {
  await page.keyboard.press('Escape');
  await page.keyboard.press('F1');
  const input = page.locator('.quick-input-widget input');
  await input.waitFor({ state: 'visible', timeout: 15_000 });
  await input.fill(`>${query}`);
}

async function paletteLabels(page: Page): Promise<string[]> {
  const rows = page.locator('.quick-input-widget .monaco-list-row');
  return (
    await rows.evaluateAll((elements) =>
      elements.map((e) => e.getAttribute('aria-label') ?? e.textContent ?? ''),
    )
  ).map((label) => label.trim());
}

/**
 * Opens the command palette on `query` and waits until a row containing `expect` shows,
 * reopening it meanwhile: commands of remote extensions register only once the extension
 * host has scanned them, some seconds after the workbench appears. Leaves it open.
 */
async function paletteShowing(
  page: Page,
  query: string,
  expect: string,
  timeoutMs: number,
): Promise<string[]> {
  const deadline = Date.now() + timeoutMs;
  let labels: string[] = [];
  while (Date.now() < deadline) {
    await openPalette(page, query);
    const reopenAt = Math.min(deadline, Date.now() + 3_000);
    while (Date.now() < reopenAt) {
      labels = await paletteLabels(page);
      if (labels.some((l) => l.includes(expect))) return labels;
      await page.waitForTimeout(200);
    }
  }
  return labels;
}

/** Command palette rows shown for `query` once one contains `expect` (or the last seen). */
export async function paletteEntries(
  page: Page,
  query: string,
  expect: string,
  timeoutMs = 60_000,
): Promise<string[]> {
  const labels = await paletteShowing(page, query, expect, timeoutMs);
  await page.keyboard.press('Escape');
  return labels;
}

/** Runs a command by its palette title, as a user would (F1, type, pick the row). */
export async function runCommand(page: Page, title: string, timeoutMs = 60_000): Promise<void> {
  const labels = await paletteShowing(page, title, title, timeoutMs);
  if (!labels.some((l) => l.includes(title))) {
    await page.keyboard.press('Escape');
    throw new Error(
      `the command palette has no "${title}"; it shows: ${labels.join(' | ') || '(nothing)'}`,
    );
  }
  await page.locator('.quick-input-widget .monaco-list-row', { hasText: title }).first().click();
}

/** The content frame of a webview that contains `selector` (webviews nest two iframes). */
export async function webviewFrame(
  page: Page,
  selector: string,
  timeoutMs: number,
): Promise<Frame | undefined> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    for (const frame of page.frames()) {
      if (frame === page.mainFrame()) continue;
      try {
        if (await frame.$(selector)) return frame;
      } catch {
        // a frame detached while we looked
      }
    }
    await page.waitForTimeout(250);
  }
  return undefined;
}

export interface ActiveEditor {
  title: string;
  language: string;
  text: string;
}

/** The active editor's tab title, language (status bar) and visible text. */
export async function activeEditor(page: Page): Promise<ActiveEditor> {
  const title = await firstText(page, '.tab.active.selected .label-name', 'textContent');
  const language = await firstText(page, '[id="status.editor.mode"]', 'textContent');
  const text = await firstText(
    page,
    '.editor-group-container.active .monaco-editor .view-lines',
    'innerText',
  );
  return { title: title.trim(), language: language.trim(), text };
}

/** The first match's text ('' when none appears in time); innerText is the rendered text. */
async function firstText(
  page: Page,
  selector: string,
  read: 'textContent' | 'innerText',
): Promise<string> {
  const first = page.locator(selector).first();
  const text = read === 'innerText' ? first.innerText() : first.textContent();
  return (await text.catch(() => null)) ?? '';
}

/**
 * The open editor tabs, each as "name" or "name — description": untitled documents with the
 * same first line share a name and differ by their description (Untitled-1, Untitled-2).
 */
export async function tabTitles(page: Page): Promise<string[]> {
  return page.locator('.tabs-container .tab').evaluateAll((tabs) =>
    tabs.map((tab) => {
      const name = tab.querySelector('.label-name')?.textContent?.trim() ?? '';
      const description = tab.querySelector('.label-description')?.textContent?.trim() ?? '';
      return description ? `${name} — ${description}` : name;
    }),
  );
}

/** Shows an editor by clicking its tab, named as tabTitles() names it. */
export async function showTab(page: Page, title: string): Promise<void> {
  const index = (await tabTitles(page)).indexOf(title);
  if (index < 0) throw new Error(`no editor tab "${title}"`);
  await page.locator('.tabs-container .tab').nth(index).click();
}
