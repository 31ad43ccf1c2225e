/** Device widths the preview offers, and how a page wider than the view is scaled to fit. */

export const DEVICE_WIDTHS = { mobile: 375, tablet: 768, desktop: 1280 } as const;
export type Device = keyof typeof DEVICE_WIDTHS;

export function isDevice(value: unknown): value is Device {
  return typeof value === 'string' && Object.prototype.hasOwnProperty.call(DEVICE_WIDTHS, value);
}

/** The scale (at most 1) that fits `width` CSS pixels into `available` ones. */
export function fitScale(width: number, available: number): number {
  if (available <= 0 || width <= available) return 1;
  return Math.max(0.1, available / width);
}

export type ImageMode = 'hidden' | 'beside' | 'overlay';

export function isImageMode(value: unknown): value is ImageMode {
  return value === 'hidden' || value === 'beside' || value === 'overlay';
}
