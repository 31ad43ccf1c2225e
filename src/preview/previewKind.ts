/** Decides how a document previews: as a web page, as a Draw.io diagram, or not at all. */

export type PreviewKind = 'html' | 'drawio';

export interface PreviewableDocument {
  languageId: string;
  fileName: string;
  getText(): string;
}

const DRAWIO_FILE = /\.(drawio|dio)(\.xml)?$/i;
const HTML_FILE = /\.html?$/i;
/** The first element after an optional XML declaration, comments and doctype. */
const DIAGRAM_ROOT =
  /^\s*(<\?xml[^>]*\?>\s*)?(<!--[\s\S]*?-->\s*|<!DOCTYPE[^>]*>\s*)*<(mxfile|mxGraphModel)[\s>/]/;

export function isDiagramXml(text: string): boolean {
  return DIAGRAM_ROOT.test(text.slice(0, 4096));
}

export function previewKindOf(document: PreviewableDocument): PreviewKind | undefined {
  if (DRAWIO_FILE.test(document.fileName)) return 'drawio';
  if (document.languageId === 'html' || HTML_FILE.test(document.fileName)) return 'html';
  if (document.languageId === 'xml' && isDiagramXml(document.getText())) return 'drawio';
  return undefined;
}

/**
 * The kind a document will preview as once code has streamed in: a generation opens an
 * empty HTML or XML document and fills it, so the language decides until the text can.
 */
export function expectedPreviewKind(document: PreviewableDocument): PreviewKind | undefined {
  const kind = previewKindOf(document);
  if (kind) return kind;
  if (document.languageId === 'xml' && document.getText().trim() === '') return 'drawio';
  return undefined;
}
