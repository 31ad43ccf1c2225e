/**
 * From a complete model reply to the code that ends up in the document: extract, then format
 * (HTML, CSS, JS, JSX with prettier) or check and wrap (Draw.io). Never loses the code.
 */
import { toDrawioDocument } from '../drawio/wrap';
import { formatCode, formatLanguageFor, type FormatLanguage } from '../format/formatCode';
import { TARGETS, type Target } from '../protocol/targets';
import { extractCode } from './extractCode';

export interface FinalCode {
  code: string;
  warnings: string[];
}

/** How the stream ended: 'length' means the token limit cut the reply off. */
export interface StreamEnd {
  finishReason?: string;
  maxTokens: number;
}

function cutOffWarning(end: StreamEnd | undefined): string[] {
  return end?.finishReason === 'length'
    ? [
        `The reply was cut off at the token limit (${end.maxTokens}), so the code is incomplete: ` +
          'raise designToCode.maxTokens and generate again, or refine to finish it.',
      ]
    : [];
}

export async function finalizeReply(
  reply: string,
  target: Target,
  formatAs?: FormatLanguage,
  end?: StreamEnd,
): Promise<FinalCode> {
  const final = await finalizeCode(reply, target, formatAs);
  return { code: final.code, warnings: [...cutOffWarning(end), ...final.warnings] };
}

async function finalizeCode(
  reply: string,
  target: Target,
  formatAs?: FormatLanguage,
): Promise<FinalCode> {
  const extracted = extractCode(reply, target, true).code;
  if (extracted.trim() === '') {
    return { code: '', warnings: ['The model replied without any code.'] };
  }
  if (target === 'drawio') {
    const document = toDrawioDocument(extracted);
    return { code: document.xml, warnings: document.warnings };
  }
  const language = formatAs ?? formatLanguageFor(TARGETS[target].languageId);
  if (!language)
    return { code: extracted.endsWith('\n') ? extracted : extracted + '\n', warnings: [] };
  return formatCode(extracted, language);
}
