/**
 * Decodes image bytes with sharp into 8-bit interleaved RGB, refusing what the engine should
 * not try: unknown formats, undecodable bytes, and images over the byte or pixel limits.
 * Transparency is composited on white, as transformers' convert_rgb does; EXIF orientation is
 * applied, as transformers' load_image does.
 */
import sharp, { type Metadata } from 'sharp';
import { EngineError } from '../errors';

export interface ImageLimits {
  /** Largest encoded image accepted, in bytes. */
  maxBytes: number;
  /** Largest decoded image accepted, width * height. */
  maxPixels: number;
}

export const DEFAULT_IMAGE_LIMITS: ImageLimits = {
  maxBytes: 32 * 1024 * 1024,
  maxPixels: 8192 * 8192,
};

export const SUPPORTED_FORMATS = ['png', 'jpeg', 'webp', 'gif'] as const;

export interface RgbImage {
  /** width * height * 3 bytes, row-major RGB. */
  data: Uint8Array;
  width: number;
  height: number;
}

export async function decodeImage(
  bytes: Uint8Array,
  limits: ImageLimits = DEFAULT_IMAGE_LIMITS,
): Promise<RgbImage> {
  if (bytes.length === 0) throw new EngineError('bad_image', 'The image is empty (0 bytes)');
  if (bytes.length > limits.maxBytes) {
    throw new EngineError(
      'image_too_large',
      `The image is ${formatMiB(bytes.length)}; the limit is ${formatMiB(limits.maxBytes)}`,
    );
  }
  const input = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length);
  const options = { limitInputPixels: limits.maxPixels, failOn: 'error' as const, pages: 1 };
  let metadata: Metadata;
  try {
    // Only the header is read here, so the pixel limit is checked below with the real numbers.
    metadata = await sharp(input, { ...options, limitInputPixels: false }).metadata();
  } catch (error) {
    if (/pixel limit/i.test(cleanSharpMessage(error))) throw tooManyPixels(limits, error);
    throw new EngineError(
      'bad_image',
      `The image could not be read (${cleanSharpMessage(error)}); send a PNG, JPEG, WebP or GIF`,
      { cause: error },
    );
  }
  const format = metadata.format as string | undefined;
  if (!format || !(SUPPORTED_FORMATS as readonly string[]).includes(format)) {
    throw new EngineError(
      'bad_image',
      `Unsupported image format ${format ?? 'unknown'}; send a PNG, JPEG, WebP or GIF`,
    );
  }
  const width = metadata.width ?? 0;
  const height = metadata.pageHeight ?? metadata.height ?? 0;
  if (width * height > limits.maxPixels) {
    throw new EngineError(
      'image_too_large',
      `The image is ${width}x${height} = ${width * height} pixels; the limit is ${limits.maxPixels} pixels`,
    );
  }
  try {
    const { data, info } = await sharp(input, options)
      .autoOrient()
      .flatten({ background: { r: 255, g: 255, b: 255 } })
      .toColourspace('srgb')
      .removeAlpha()
      .raw({ depth: 'uchar' })
      .toBuffer({ resolveWithObject: true });
    if (info.channels !== 3) {
      throw new Error(`decoded to ${info.channels} channels instead of 3`);
    }
    return {
      data: new Uint8Array(data.buffer, data.byteOffset, data.length),
      width: info.width,
      height: info.height,
    };
  } catch (error) {
    if (/pixel limit/i.test(cleanSharpMessage(error))) throw tooManyPixels(limits, error);
    throw new EngineError(
      'bad_image',
      `The ${format} image could not be decoded (${cleanSharpMessage(error)}); it may be truncated or corrupt`,
      { cause: error },
    );
  }
}

function tooManyPixels(limits: ImageLimits, cause: unknown): EngineError {
  return new EngineError(
    'image_too_large',
    `The image has more than ${limits.maxPixels} pixels, the limit; send a smaller image`,
    { cause },
  );
}

function cleanSharpMessage(error: unknown): string {
  return String((error as Error)?.message ?? error)
    .split('\n')[0]
    .trim();
}

function formatMiB(bytes: number): string {
  return `${(bytes / (1024 * 1024)).toFixed(1)} MiB`;
}
