/** Conversions between the panel's base64 ImagePayload, the API's SourceImage, and files. */
import * as vscode from 'vscode';
import type { SourceImage } from '../generation/api';
import { GenerationError } from '../generation/api';
import {
  IMAGE_MIME_BY_EXTENSION,
  IMAGE_MIME_TYPES,
  MAX_IMAGE_BYTES,
  type ImagePayload,
} from '../protocol/panel';

export const IMAGE_FILE_EXTENSIONS = Object.keys(IMAGE_MIME_BY_EXTENSION);

export function decodeImage(payload: ImagePayload): SourceImage {
  return {
    name: payload.name,
    mimeType: payload.mimeType,
    bytes: new Uint8Array(Buffer.from(payload.base64, 'base64')),
  };
}

export function encodeImage(image: SourceImage): ImagePayload {
  const mimeType = IMAGE_MIME_TYPES.find((type) => type === image.mimeType);
  if (!mimeType) {
    throw new GenerationError(
      `${image.name} is a ${image.mimeType} file, not a supported image.`,
      [],
    );
  }
  const base64 = Buffer.from(image.bytes.buffer, image.bytes.byteOffset, image.bytes.byteLength);
  return { name: image.name, mimeType, base64: base64.toString('base64') };
}

/** Reads an image file the user picked, refusing formats and sizes the panel cannot take. */
export async function readImageFile(uri: vscode.Uri): Promise<SourceImage> {
  const name = uri.path.split('/').pop() ?? 'image';
  const extension = name.split('.').pop()?.toLowerCase() ?? '';
  const mimeType = IMAGE_MIME_BY_EXTENSION[extension];
  if (!mimeType) {
    throw new GenerationError(
      `${name} is not an image the model can read. Choose a ${IMAGE_FILE_EXTENSIONS.join(', ')} file.`,
      [],
    );
  }
  const { size } = await vscode.workspace.fs.stat(uri);
  if (size > MAX_IMAGE_BYTES) {
    const megabytes = (size / 1024 / 1024).toFixed(1);
    throw new GenerationError(
      `${name} is ${megabytes} MB; the limit is ${MAX_IMAGE_BYTES / 1024 / 1024} MB. Scale it down or crop it.`,
      [],
    );
  }
  return { name, mimeType, bytes: await vscode.workspace.fs.readFile(uri) };
}
