import { strict as assert } from 'node:assert';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { generationMessages } from '../../src/generation/prompts';
import { inlineTailwind, referencesTailwind, tailwindCandidates } from '../../src/preview/tailwind';

const INDEX_CSS = readFileSync(
  path.join(__dirname, '..', '..', 'node_modules', 'tailwindcss', 'index.css'),
  'utf8',
);

const PAGE =
  '<!DOCTYPE html><html><head><title>T</title>' +
  '<script src="https://cdn.tailwindcss.com"></script></head>' +
  '<body><div class="bg-blue-500 p-4 md:flex text-[#123456]">Hi</div></body></html>';

describe('Tailwind pages in the preview', () => {
  it('tells Tailwind pages from others', () => {
    assert.equal(referencesTailwind(PAGE), true);
    assert.equal(
      referencesTailwind(
        '<script src="https://cdn.jsdelivr.net/npm/@tailwindcss/browser@4"></script>',
      ),
      true,
    );
    assert.equal(referencesTailwind('<style type="text/tailwindcss">h1{}</style>'), true);
    assert.equal(referencesTailwind('<html><body class="p-4">plain</body></html>'), false);
  });

  it('recognises the CDN script tag the Tailwind prompt asks the model for', () => {
    const [, user] = generationMessages('tailwind', 'data:image/png;base64,', '');
    const parts = user!.content as { type: string; text?: string }[];
    const tag = /<script src="[^"]+"><\/script>/.exec(parts[1]!.text!)?.[0];
    assert.ok(tag, 'the Tailwind prompt names no script tag');
    assert.equal(referencesTailwind(`<head>${tag}</head>`), true);
  });

  it('takes the class names as candidates, arbitrary values included', () => {
    const candidates = tailwindCandidates(`<p class='content-["a_b"] p-2'>x</p>`);
    assert.ok(candidates.includes('content-["a_b"]'));
    assert.ok(candidates.includes('p-2'));
    assert.ok(
      !tailwindCandidates(`<img src="data:image/png;base64,${'A'.repeat(500)}">`).some(
        (token) => token.length > 200,
      ),
    );
  });

  it('replaces the CDN script with the compiled CSS of the classes the page uses', async () => {
    const { html, warning } = await inlineTailwind(PAGE, INDEX_CSS);
    assert.equal(warning, undefined);
    assert.ok(!html.includes('cdn.tailwindcss.com'), 'the remote script is still there');
    const style = /<style data-tailwind="compiled offline">([\s\S]*?)<\/style>/.exec(html);
    assert.ok(style, 'no compiled style');
    assert.ok(html.indexOf(style[0]) < html.indexOf('</head>'), 'the style is not in the head');
    const css = style[1]!;
    assert.match(css, /\.bg-blue-500\s*\{\s*background-color: var\(--color-blue-500\)/);
    assert.match(css, /--color-blue-500: oklch\(/, 'the theme variable is not defined');
    assert.match(css, /\.p-4\s*\{\s*padding: calc\(var\(--spacing\) \* 4\)/);
    assert.match(css, /@media \(width >= 48rem\)\s*\{\s*\.md\\:flex\s*\{\s*display: flex/);
    assert.match(css, /\.text-\\\[\\#123456\\\]\s*\{\s*color: #123456/);
    assert.ok(!/\.bg-red-500\b/.test(css), 'utilities the page does not use were generated');
    assert.match(html, /<div class="bg-blue-500 p-4 md:flex text-\[#123456\]">Hi<\/div>/);
  });

  it("compiles the page's own text/tailwindcss rules, and still renders when they are wrong", async () => {
    const own = await inlineTailwind(
      '<html><head><style type="text/tailwindcss">.btn { @apply rounded-lg px-2; }</style></head>' +
        '<body><button class="btn">Go</button></body></html>',
      INDEX_CSS,
    );
    assert.equal(own.warning, undefined);
    assert.ok(!own.html.includes('text/tailwindcss'));
    assert.match(own.html, /\.btn\s*\{\s*border-radius: var\(--radius-lg\)/);

    const broken = await inlineTailwind(
      '<html><head><style type="text/tailwindcss">.btn { @apply no-such-utility; }</style></head>' +
        '<body class="bg-blue-500"></body></html>',
      INDEX_CSS,
    );
    assert.match(broken.warning ?? '', /does not compile: .*no-such-utility/);
    assert.match(broken.html, /\.bg-blue-500\s*\{/);
  });

  it('puts the style first when the page has no head, and escapes a closing style tag', async () => {
    const { html } = await inlineTailwind(
      `<div class="p-1 content-['</style>']">x</div>`,
      INDEX_CSS,
    );
    assert.ok(html.startsWith('<style data-tailwind'));
    // The style element runs to its own end: the rule with "</style>" in it is escaped.
    const style = /^<style[^>]*>([\s\S]*?)<\/style>/.exec(html)![1]!;
    assert.match(style, /content: '<\\\/style>'/);
    assert.match(style, /\.p-1\s*\{/);
  });
});
