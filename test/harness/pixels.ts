// Whether a screenshot shows something: a blank (one-colour) capture has almost no spread
// of colours, a rendered UI has many. sharp decodes the PNG.
import sharp from 'sharp';

export interface PixelSummary {
  width: number;
  height: number;
  /** Distinct colours among sampled pixels. */
  colours: number;
  /** Largest per-channel standard deviation. */
  spread: number;
}

export async function summarizePixels(png: Buffer): Promise<PixelSummary> {
  const image = sharp(png).removeAlpha();
  const { data, info } = await image.raw().toBuffer({ resolveWithObject: true });
  const stats = await sharp(png).removeAlpha().stats();
  const colours = new Set<number>();
  const step = Math.max(1, Math.floor((info.width * info.height) / 20_000)) * info.channels;
  for (let i = 0; i + 2 < data.length; i += step)
    colours.add((data[i]! << 16) | (data[i + 1]! << 8) | data[i + 2]!);
  return {
    width: info.width,
    height: info.height,
    colours: colours.size,
    spread: Math.max(...stats.channels.map((c) => c.stdev)),
  };
}

export async function assertNotBlank(png: Buffer, what: string): Promise<PixelSummary> {
  const summary = await summarizePixels(png);
  if (summary.colours < 3 || summary.spread < 2) {
    throw new Error(
      `${what} looks blank: ${summary.colours} colours, spread ${summary.spread.toFixed(1)}`,
    );
  }
  return summary;
}
