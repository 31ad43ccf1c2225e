/** Device widths the preview offers, and how a page wider than the view is scaled to fit. */

export const DEVICE_WIDTHS = { mobile: 375, tablet: 768, desktop: 1280 } as const;
/** A preset width, or `fit`: the page takes the width the view has. */
export type Device = keyof typeof DEVICE_WIDTHS | 'fit';

export function isDevice(value: unknown): value is Device {
  return (
    value === 'fit' ||
    (typeof value === 'string' && Object.prototype.hasOwnProperty.call(DEVICE_WIDTHS, value))
  );
}

/** The CSS width the page is laid out at. */
export function deviceWidth(device: Device, available: number): number {
  return device === 'fit' ? Math.max(Math.floor(available), 1) : DEVICE_WIDTHS[device];
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
