/**
 * Formats generated code with prettier's standalone build (bundles into the extension, no
 * dynamic plugin loading). A formatting failure never loses code: the input comes back
 * unchanged with a warning that says why.
 */
import * as prettier from 'prettier/standalone';
import * as babelPlugin from 'prettier/plugins/babel';
import * as estreePlugin from 'prettier/plugins/estree';
import * as htmlPlugin from 'prettier/plugins/html';
import * as postcssPlugin from 'prettier/plugins/postcss';

export type FormatLanguage = 'html' | 'css' | 'javascript' | 'javascriptreact';

export interface Formatted {
  code: string;
  warnings: string[];
}

const PARSERS: Record<FormatLanguage, string> = {
  html: 'html',
  css: 'css',
  javascript: 'babel',
  javascriptreact: 'babel',
};

const PLUGINS = [htmlPlugin, postcssPlugin, babelPlugin, estreePlugin];

export function formatLanguageFor(languageId: string): FormatLanguage | undefined {
  return languageId in PARSERS ? (languageId as FormatLanguage) : undefined;
}

export async function formatCode(code: string, language: FormatLanguage): Promise<Formatted> {
  try {
    const formatted = await prettier.format(code, {
      parser: PARSERS[language],
      plugins: PLUGINS,
      printWidth: 100,
    });
    return { code: formatted, warnings: [] };
  } catch (error) {
    const reason = error instanceof Error ? error.message.split('\n')[0] : String(error);
    return {
      code,
      warnings: [`The code was left unformatted: prettier could not parse it (${reason}).`],
    };
  }
}
