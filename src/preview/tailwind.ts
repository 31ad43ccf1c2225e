/**
 * Tailwind pages in the preview, offline. A Tailwind page loads Tailwind from its CDN, which
 * the preview cannot reach (the webview's CSP and the page server's CSP allow no network).
 *
 * Why the CSS is compiled here, on the host, rather than shipping Tailwind's browser build
 * (@tailwindcss/browser) into the frame: that build is a script, and the default preview is a
 * sandboxed `srcdoc` frame with scripts off, so it would only work when the user allows page
 * scripts (the loopback page server). Compiling with the `tailwindcss` package's `compile()`
 * from the page's class names and putting the result in a <style> works in both modes, keeps
 * scripts off by default, and gives the same rules the browser build would generate.
 *
 * Pure (no vscode): the host hands in the text of tailwindcss/index.css.
 */

/** A <script> that loads Tailwind: the Play CDN (v3) or the v4 browser build. */
const TAILWIND_SCRIPT =
  /<script\b[^>]*\bsrc\s*=\s*["']?[^"'\s>]*(?:cdn\.tailwindcss\.com|@tailwindcss\/browser)[^>]*>[\s\S]*?<\/script\s*>/gi;
/** <style type="text/tailwindcss">: Tailwind CSS (@apply, @theme) the CDN script compiles. */
const TAILWIND_STYLE =
  /<style\b[^>]*\btype\s*=\s*["']?text\/tailwindcss["']?[^>]*>([\s\S]*?)<\/style\s*>/gi;
const CLASS_ATTRIBUTE = /\bclass(?:Name)?\s*=\s*(?:"([^"]*)"|'([^']*)')/gi;
/** Longer tokens are not class names (data URLs, minified code) and only slow the build. */
const MAX_TOKEN_LENGTH = 120;

/** Whether the page loads Tailwind (by script or by a text/tailwindcss style). */
export function referencesTailwind(html: string): boolean {
  return new RegExp(TAILWIND_SCRIPT.source, 'i').test(html) || /text\/tailwindcss/i.test(html);
}

/**
 * The class names the page may use. Like Tailwind's own scanner, every word of the page is a
 * candidate (so classes named in scripts count too) and unknown ones are ignored by the build;
 * class attributes are added whole, as they may hold arbitrary values with quotes in them.
 */
export function tailwindCandidates(html: string): string[] {
  const candidates = new Set<string>();
  for (const match of html.matchAll(CLASS_ATTRIBUTE)) {
    for (const name of (match[1] ?? match[2] ?? '').split(/\s+/)) if (name) candidates.add(name);
  }
  for (const token of html.split(/[\s"'`<>=]+/)) {
    if (token && token.length <= MAX_TOKEN_LENGTH) candidates.add(token);
  }
  return [...candidates];
}

export interface InlinedTailwind {
  html: string;
  /** Set when the page's own Tailwind CSS did not compile (its rules are left out). */
  warning?: string;
}

/**
 * The page with its Tailwind scripts and text/tailwindcss styles replaced by one <style> of
 * the compiled CSS (at the end of the head, where the CDN script puts its own).
 */
export async function inlineTailwind(html: string, indexCss: string): Promise<InlinedTailwind> {
  const ownCss = [...html.matchAll(TAILWIND_STYLE)].map((match) => match[1]).join('\n');
  const page = html.replace(TAILWIND_SCRIPT, '').replace(TAILWIND_STYLE, '');
  const candidates = tailwindCandidates(page);
  let css: string;
  let warning: string | undefined;
  try {
    css = await compileTailwind(ownCss, candidates, indexCss);
  } catch (error) {
    // The page's own @apply/@theme rules are wrong: the utilities still render.
    warning = `its Tailwind CSS does not compile: ${error instanceof Error ? error.message : String(error)}`;
    css = await compileTailwind('', candidates, indexCss);
  }
  // "</style" inside a rule (an arbitrary content value) would end the element early.
  const style = `<style data-tailwind="compiled offline">\n${css.replace(/<\/style/gi, '<\\/style')}</style>`;
  return { html: insertInHead(page, style), warning };
}

async function compileTailwind(
  ownCss: string,
  candidates: string[],
  indexCss: string,
): Promise<string> {
  // Loaded on first use, so activation does not pay for the compiler.
  const { compile } = await import('tailwindcss');
  const compiler = await compile(`@import "tailwindcss";\n${ownCss}`, {
    base: '/',
    loadStylesheet: async (id, base) => {
      if (id === 'tailwindcss') return { path: 'tailwindcss/index.css', base, content: indexCss };
      throw new Error(`the preview works offline and cannot load the stylesheet "${id}"`);
    },
    loadModule: async (id) => {
      throw new Error(`the preview cannot load the Tailwind plugin or config "${id}"`);
    },
  });
  return compiler.build(candidates);
}

function insertInHead(html: string, element: string): string {
  const headEnd = html.search(/<\/head\s*>/i);
  if (headEnd >= 0) return html.slice(0, headEnd) + element + html.slice(headEnd);
  const bodyStart = html.search(/<body[\s>]/i);
  if (bodyStart >= 0) return html.slice(0, bodyStart) + element + html.slice(bodyStart);
  return element + html;
}
