/**
 * Turns checked Draw.io XML into a .drawio document: an mxfile with one uncompressed page.
 * XML that is already an mxfile is kept as it is; anything else is kept inside the page so
 * that nothing the model wrote is lost.
 */
import { checkDiagram, type DiagramCheck } from './validate';

export interface DrawioDocument {
  xml: string;
  check: DiagramCheck;
  warnings: string[];
}

function stripProlog(xml: string): string {
  return xml.replace(/^\s*<\?xml[^>]*\?>\s*/, '').trim();
}

export function toDrawioDocument(xml: string, pageName = 'Page-1'): DrawioDocument {
  const check = checkDiagram(xml);
  const warnings = check.problems.map((problem) => `Draw.io: ${problem}`);
  const body = stripProlog(xml);
  if (check.root === 'mxfile') return { xml: body + '\n', check, warnings };
  if (check.root === 'mxGraphModel') {
    const wrapped =
      `<mxfile host="design-to-code">\n` +
      `  <diagram id="design-to-code-1" name="${pageName}">\n` +
      `    ${body}\n` +
      `  </diagram>\n` +
      `</mxfile>\n`;
    return { xml: wrapped, check, warnings };
  }
  // Not a diagram Draw.io can read: keep the text as it is, the warnings say what is wrong.
  return { xml: body + '\n', check, warnings };
}
