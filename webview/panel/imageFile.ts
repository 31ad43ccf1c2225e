/** Turns a pasted, dropped or chosen File into the ImagePayload the host accepts. */
import {
  IMAGE_MIME_BY_EXTENSION,
  IMAGE_MIME_TYPES,
  MAX_IMAGE_BYTES,
  type ImageMimeType,
  type ImagePayload,
} from '../../src/protocol/panel';

/** The file's image type, from its MIME type or else its name; undefined when unsupported. */
export function imageMimeType(file: { name: string; type: string }): ImageMimeType | undefined {
  const declared = IMAGE_MIME_TYPES.find((type) => type === file.type);
  if (declared) return declared;
  if (file.type && file.type !== 'application/octet-stream') return undefined;
  return IMAGE_MIME_BY_EXTENSION[file.name.split('.').pop()?.toLowerCase() ?? ''];
}

/** Why the file cannot be used, in words for the user; undefined when it can. */
export function imageFileProblem(file: {
  name: string;
  type: string;
  size: number;
}): string | undefined {
  if (!imageMimeType(file)) {
    return `${file.name || 'This file'} is not a PNG, JPEG, WebP, GIF or SVG image.`;
  }
  if (file.size > MAX_IMAGE_BYTES) {
    const megabytes = (file.size / 1024 / 1024).toFixed(1);
    return `${file.name || 'The image'} is ${megabytes} MB; the limit is ${MAX_IMAGE_BYTES / 1024 / 1024} MB. Scale it down or crop it, then try again.`;
  }
  return undefined;
}

export async function readImageFile(file: File): Promise<ImagePayload> {
  const mimeType = imageMimeType(file);
  if (!mimeType) throw new Error(imageFileProblem(file));
  const dataUrl = await new Promise<string>((resolve, reject) => {
    const reader = new FileReader();
    reader.onload = () => resolve(String(reader.result));
    reader.onerror = () => reject(reader.error ?? new Error(`Could not read ${file.name}.`));
    reader.readAsDataURL(file);
  });
  const base64 = dataUrl.slice(dataUrl.indexOf(',') + 1);
  return { name: file.name || `pasted.${mimeType.split(/[/+]/)[1]}`, mimeType, base64 };
}

/** The first image among the files of a paste or drop. */
export function firstImage(files: Iterable<File>): File | undefined {
  for (const file of files) if (file.type.startsWith('image/') || imageMimeType(file)) return file;
  return undefined;
}
