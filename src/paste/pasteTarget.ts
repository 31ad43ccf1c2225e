/** What to generate for an image pasted into a document, by the document's kind. */
import type { GenerateRequest } from '../generation/api';
import type { Target } from '../protocol/targets';

/**
 * The documents that offer "Generate code from image" on paste. package.json activates the
 * extension on each of these languages (.drawio files are XML by this extension's language
 * contribution), so the paste option is there before any command ran.
 */
export const PASTE_SELECTOR: { language?: string; pattern?: string }[] = [
  { language: 'html' },
  { language: 'javascriptreact' },
  { language: 'typescriptreact' },
  { language: 'css' },
  { pattern: '**/*.drawio' },
];

export type PasteRequest = Pick<GenerateRequest, 'target' | 'instruction' | 'formatAs'>;

export function pasteTargetFor(
  document: { languageId: string; path: string },
  defaultTarget: Target,
): PasteRequest {
  if (document.path.endsWith('.drawio')) return { target: 'drawio', instruction: '' };
  switch (document.languageId) {
    case 'javascriptreact':
    case 'typescriptreact':
      return { target: 'react', instruction: '' };
    case 'css':
      return {
        target: 'html',
        instruction: 'Reply with only the CSS rules for this interface, in a ```css block.',
        formatAs: 'css',
      };
    default:
      return { target: defaultTarget === 'tailwind' ? 'tailwind' : 'html', instruction: '' };
  }
}
