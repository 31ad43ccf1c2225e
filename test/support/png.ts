/** PNG pieces for tests that build images by hand: chunks with their length and CRC. */
import { crc32 } from 'node:zlib';

/** One PNG chunk: length, type, data, CRC-32 of type and data. */
export function pngChunk(type: string, data: Buffer): Buffer {
  const length = Buffer.alloc(4);
  length.writeUInt32BE(data.length);
  const typeAndData = Buffer.concat([Buffer.from(type, 'latin1'), data]);
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(typeAndData));
  return Buffer.concat([length, typeAndData, crc]);
}

/** The PNG with one more chunk right after IHDR, where draw.io puts its diagram. */
export function withChunkAfterIhdr(png: Uint8Array, chunk: Buffer): Buffer {
  const ihdrEnd = 8 + 8 + 13 + 4; // signature, IHDR length and type, IHDR data, CRC
  return Buffer.concat([png.subarray(0, ihdrEnd), chunk, png.subarray(ihdrEnd)]);
}
