import { strict as assert } from 'node:assert';
import { pasteTargetFor } from '../../src/paste/pasteTarget';

describe('pasteTargetFor', () => {
  it('picks the target from the document an image is pasted into', () => {
    assert.equal(
      pasteTargetFor({ languageId: 'typescriptreact', path: '/a/App.tsx' }, 'html').target,
      'react',
    );
    assert.equal(
      pasteTargetFor({ languageId: 'plaintext', path: '/a/flow.drawio' }, 'html').target,
      'drawio',
    );
    assert.equal(
      pasteTargetFor({ languageId: 'html', path: '/a/index.html' }, 'tailwind').target,
      'tailwind',
    );
    assert.equal(
      pasteTargetFor({ languageId: 'html', path: '/a/index.html' }, 'react').target,
      'html',
    );
    const css = pasteTargetFor({ languageId: 'css', path: '/a/site.css' }, 'html');
    assert.equal(css.formatAs, 'css');
    assert.match(css.instruction, /only the CSS/);
  });
});
