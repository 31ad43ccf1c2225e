/**
 * Finds the diagram a draw.io export carries, so it can be offered without inference:
 *  - PNG: a tEXt, zTXt or iTXt chunk with keyword "mxfile", its text URL-encoded;
 *  - SVG: the root's `content` attribute, an XML-escaped mxfile (base64 in old exports).
 * Returns the mxfile XML exactly as draw.io stored it (pages may be compressed), or undefined.
 */
import { inflateSync } from 'node:zlib';
import { XMLParser } from 'fast-xml-parser';

const PNG_SIGNATURE = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];
const KEYWORD = 'mxfile';

function isPng(bytes: Uint8Array): boolean {
  return PNG_SIGNATURE.every((value, index) => bytes[index] === value);
}

function latin1(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('latin1');
}

/** The text of a PNG text chunk if its keyword is "mxfile". */
function chunkText(type: string, data: Uint8Array): string | undefined {
  const keywordEnd = data.indexOf(0);
  if (keywordEnd < 0 || latin1(data.subarray(0, keywordEnd)) !== KEYWORD) return undefined;
  const rest = data.subarray(keywordEnd + 1);
  if (type === 'tEXt') return latin1(rest);
  if (type === 'zTXt') return inflateSync(rest.subarray(1)).toString('latin1');
  // iTXt: compression flag, method, language tag\0, translated keyword\0, UTF-8 text.
  const compressed = rest[0] === 1;
  const languageEnd = rest.indexOf(0, 2);
  const translatedEnd = rest.indexOf(0, languageEnd + 1);
  if (languageEnd < 0 || translatedEnd < 0) return undefined;
  const text = rest.subarray(translatedEnd + 1);
  return (compressed ? inflateSync(text) : Buffer.from(text)).toString('utf8');
}

function decodeUriText(text: string): string {
  try {
    return decodeURIComponent(text);
  } catch {
    return text;
  }
}

export function diagramFromPng(bytes: Uint8Array): string | undefined {
  if (!isPng(bytes)) return undefined;
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let offset = 8;
  while (offset + 12 <= bytes.length) {
    const length = view.getUint32(offset);
    const type = latin1(bytes.subarray(offset + 4, offset + 8));
    const dataStart = offset + 8;
    if (dataStart + length > bytes.length) return undefined; // truncated file
    if (type === 'tEXt' || type === 'zTXt' || type === 'iTXt') {
      try {
        const text = chunkText(type, bytes.subarray(dataStart, dataStart + length));
        if (text !== undefined) return asMxfile(decodeUriText(text));
      } catch {
        return undefined; // a damaged chunk: no diagram to offer
      }
    }
    if (type === 'IEND') return undefined;
    offset = dataStart + length + 4; // skip the CRC
  }
  return undefined;
}

const svgParser = new XMLParser({
  ignoreAttributes: false,
  attributeNamePrefix: '@',
  processEntities: true,
  htmlEntities: true,
});

export function diagramFromSvg(text: string): string | undefined {
  if (!/<svg[\s>]/.test(text) || !/\bcontent=/.test(text)) return undefined;
  let svg: Record<string, unknown> | undefined;
  try {
    svg = (svgParser.parse(text) as Record<string, unknown>)['svg'] as Record<string, unknown>;
  } catch {
    return undefined;
  }
  const content = svg?.['@content'];
  if (typeof content !== 'string') return undefined;
  if (content.trimStart().startsWith('<')) return asMxfile(content);
  try {
    return asMxfile(decodeUriText(Buffer.from(content, 'base64').toString('utf8')));
  } catch {
    return undefined;
  }
}

function asMxfile(xml: string): string | undefined {
  const trimmed = xml.trim();
  return /^<mxfile[\s>]/.test(trimmed) || /^<mxGraphModel[\s>]/.test(trimmed) ? trimmed : undefined;
}

/** The embedded diagram of a draw.io PNG or SVG export, if there is one. */
export function embeddedDiagram(bytes: Uint8Array, mimeType: string): string | undefined {
  if (mimeType === 'image/png' || isPng(bytes)) return diagramFromPng(bytes);
  if (mimeType === 'image/svg+xml') return diagramFromSvg(Buffer.from(bytes).toString('utf8'));
  return undefined;
}
