/**
 * draw.io's compressed diagram encoding: a <diagram> element's text is
 * base64(deflateRaw(encodeURIComponent(mxGraphModel XML))).
 */
import { inflateRawSync } from 'node:zlib';

export function decompressDiagram(text: string): string {
  const bytes = Buffer.from(text.trim(), 'base64');
  const inflated = inflateRawSync(bytes).toString('latin1');
  return decodeURIComponent(inflated);
}
