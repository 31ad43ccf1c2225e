import { strict as assert } from 'node:assert';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { PASTE_SELECTOR } from '../../src/paste/pasteTarget';

interface Manifest {
  activationEvents: string[];
  contributes: { languages?: { id: string; extensions?: string[] }[] };
}

const manifest = JSON.parse(
  readFileSync(path.join(__dirname, '..', '..', 'package.json'), 'utf8'),
) as Manifest;

describe('activation for the image paste provider', () => {
  it('activates on every language the paste provider serves, so the option is there at once', () => {
    const languages = PASTE_SELECTOR.flatMap((filter) =>
      filter.language ? [filter.language] : [],
    );
    assert.ok(languages.length >= 4);
    for (const language of languages) {
      assert.ok(
        manifest.activationEvents.includes(`onLanguage:${language}`),
        `no onLanguage:${language} activation event`,
      );
    }
  });

  it('gives file patterns (.drawio) a language it activates on', () => {
    for (const { pattern } of PASTE_SELECTOR) {
      if (!pattern) continue;
      const extension = path.extname(pattern);
      const language = manifest.contributes.languages?.find((candidate) =>
        candidate.extensions?.includes(extension),
      );
      assert.ok(language, `no language contributed for ${extension} files`);
      assert.ok(manifest.activationEvents.includes(`onLanguage:${language.id}`));
    }
  });

  it('does not activate on every start-up', () => {
    assert.ok(!manifest.activationEvents.includes('*'));
    assert.ok(!manifest.activationEvents.includes('onStartupFinished'));
  });
});
