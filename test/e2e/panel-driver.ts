// Drives the Design to Code panel webview as a user: paste an image, pick a target, press
// Generate or Stop, and read what the panel says (its progress line and error box).
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import type { Frame, Page } from 'playwright-core';
import { webviewFrame } from '../harness/workbench';

interface PanelTexts {
  progress: string[];
  errors: string[];
}

// Runs in the webview as source text: the test's TypeScript transform would otherwise add
// helpers (esbuild's __name) that do not exist in the page.
const WATCH_PANEL_TEXTS = `(() => {
  window.__e2eObserver?.disconnect();
  const texts = { progress: [], errors: [] };
  window.__e2eTexts = texts;
  window.__e2eObserver = new MutationObserver(() => {
    const progress = document.querySelector('.progress')?.textContent?.trim() ?? '';
    const error = document.querySelector('.error:not([hidden])')?.textContent?.trim() ?? '';
    if (progress && texts.progress.at(-1) !== progress) texts.progress.push(progress);
    if (error && texts.errors.at(-1) !== error) texts.errors.push(error);
  });
  window.__e2eObserver.observe(document.body, { subtree: true, childList: true, characterData: true, attributes: true });
})()`;

export class PanelDriver {
  /** Set when the panel's webview went away mid-run (another editor covered it). */
  hiddenDuringRun = false;

  constructor(
    private readonly page: Page,
    public frame: Frame,
  ) {}

  /**
   * Whether the panel is on screen: its webview's outer iframe in the workbench is visible
   * (a webview kept alive while hidden stays attached but is made invisible).
   */
  async isShown(): Promise<boolean> {
    if (this.frame.isDetached()) return false;
    let outer = this.frame;
    while (outer.parentFrame() && outer.parentFrame() !== this.page.mainFrame())
      outer = outer.parentFrame()!;
    try {
      const element = await outer.frameElement();
      const box = await element.boundingBox();
      return (await element.isVisible()) && !!box && box.width > 0 && box.height > 0;
    } catch {
      return false; // detached meanwhile
    }
  }

  /** Brings the panel back as a user would, by its editor tab, when it is not in view. */
  async reveal(): Promise<void> {
    if (!this.frame.isDetached() && (await this.isShown())) return;
    this.hiddenDuringRun = true;
    await this.page.locator('.tabs-container .tab', { hasText: 'Design to Code' }).first().click();
    const frame = await webviewFrame(this.page, 'select#target', 20_000);
    if (!frame)
      throw new Error('the panel did not come back after clicking its "Design to Code" tab');
    this.frame = frame;
    await this.watch();
  }

  button(name: 'Generate' | 'Stop') {
    return this.frame.getByRole('button', { name, exact: true });
  }

  /** A paste event carrying the file, as the browser fires for Ctrl+V of a copied image. */
  async paste(file: string): Promise<void> {
    const data = readFileSync(file).toString('base64');
    await this.frame.evaluate(
      ({ data, name }) => {
        const bytes = Uint8Array.from(atob(data), (c) => c.charCodeAt(0));
        const transfer = new DataTransfer();
        transfer.items.add(new File([bytes], name, { type: 'image/png' }));
        document.dispatchEvent(
          new ClipboardEvent('paste', { clipboardData: transfer, bubbles: true, cancelable: true }),
        );
      },
      { data, name: path.basename(file) },
    );
  }

  async chooseTarget(pattern: RegExp): Promise<void> {
    const select = this.frame.locator('select#target');
    const options = await select
      .locator('option')
      .evaluateAll((els) =>
        els.map((e) => ({ value: (e as HTMLOptionElement).value, label: e.textContent ?? '' })),
      );
    const option = options.find((o) => pattern.test(o.label));
    assert.ok(
      option,
      `the target picker has no option matching ${pattern}: ${options.map((o) => o.label).join(', ')}`,
    );
    await select.selectOption(option.value);
  }

  /**
   * Records every text the progress line and the error box show from now on, so a wait
   * cannot mistake the previous run's "Done" for this one's.
   */
  async watch(): Promise<void> {
    await this.frame.evaluate(WATCH_PANEL_TEXTS);
  }

  /**
   * Waits for the run started after watch() to end well: "Done" in the progress line, or,
   * when the panel was covered meanwhile and came back idle (Generate enabled, no error),
   * the run that ended out of view.
   */
  async waitForDone(timeoutMs: number, doing: string): Promise<string> {
    const deadline = Date.now() + timeoutMs;
    while (true) {
      try {
        return await this.waitFor(/^Done: \d+ tokens/m, {
          timeoutMs: Math.min(5_000, deadline - Date.now()),
          doing,
        });
      } catch (error) {
        if (Date.now() >= deadline) throw error;
        if (/shows an error/.test((error as Error).message)) throw error;
        if (
          this.hiddenDuringRun &&
          (await this.button('Generate').isEnabled()) &&
          !(await this.button('Stop').isEnabled())
        ) {
          return 'finished while the panel was hidden';
        }
      }
    }
  }

  private async currentTexts(): Promise<PanelTexts> {
    const progress = ((await this.frame.locator('.progress').textContent()) ?? '').trim();
    const error = this.frame.locator('.error:not([hidden])');
    const errorText =
      (await error.count()) > 0 ? ((await error.first().textContent()) ?? '').trim() : '';
    return { progress: progress ? [progress] : [], errors: errorText ? [errorText] : [] };
  }

  private texts(): Promise<PanelTexts> {
    return this.frame.evaluate('window.__e2eTexts') as Promise<PanelTexts>;
  }

  /**
   * Waits until the progress line (or, with `inErrors`, the error box) has shown text
   * matching `pattern` since watch(); an error the step did not expect fails it at once.
   */
  async waitFor(
    pattern: RegExp,
    options: { timeoutMs: number; doing: string; inErrors?: boolean },
  ): Promise<string> {
    const deadline = Date.now() + options.timeoutMs;
    let seen: PanelTexts = { progress: [], errors: [] };
    while (Date.now() < deadline) {
      if (!(await this.isShown())) await this.reveal();
      seen = await this.texts().catch(() => seen); // detached between the check and the read
      // A panel that came back shows the current state: what it reads now counts too.
      const now = await this.currentTexts().catch(() => ({ progress: [], errors: [] }));
      seen = {
        progress: [...seen.progress, ...now.progress],
        errors: [...seen.errors, ...now.errors],
      };
      const pool = options.inErrors ? [...seen.errors, ...seen.progress] : seen.progress;
      const hit = pool.find((text) => pattern.test(text));
      if (hit) return hit;
      if (!options.inErrors && seen.errors.length > 0) {
        throw new Error(`${options.doing}: the panel shows an error: ${seen.errors.at(-1)}`);
      }
      await this.page.waitForTimeout(200);
    }
    throw new Error(
      `${options.doing}: the panel never showed ${pattern} in ${options.timeoutMs / 1000}s; ` +
        `progress: ${seen.progress.join(' → ') || '(none)'}; errors: ${seen.errors.join(' | ') || '(none)'}`,
    );
  }
}
