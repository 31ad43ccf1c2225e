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
  /** Share of sampled pixels that differ from the most common colour (the background). */
  inked: number;
}

export async function summarizePixels(png: Buffer): Promise<PixelSummary> {
  const image = sharp(png).removeAlpha();
  const { data, info } = await image.raw().toBuffer({ resolveWithObject: true });
  const stats = await sharp(png).removeAlpha().stats();
  const counts = new Map<number, number>();
  let sampled = 0;
  const step = Math.max(1, Math.floor((info.width * info.height) / 40_000)) * info.channels;
  for (let i = 0; i + 2 < data.length; i += step) {
    const colour = (data[i]! << 16) | (data[i + 1]! << 8) | data[i + 2]!;
    counts.set(colour, (counts.get(colour) ?? 0) + 1);
    sampled++;
  }
  const background = Math.max(...counts.values());
  return {
    width: info.width,
    height: info.height,
    colours: counts.size,
    spread: Math.max(...stats.channels.map((c) => c.stdev)),
    inked: (sampled - background) / sampled,
  };
}

/** Something is drawn on the background: at least `minInked` of the pixels differ from it. */
export async function assertInked(
  png: Buffer,
  what: string,
  minInked = 0.0005,
): Promise<PixelSummary> {
  const summary = await summarizePixels(png);
  if (summary.inked < minInked) {
    throw new Error(
      `${what} is empty: ${(summary.inked * 100).toFixed(3)}% of its pixels differ from the background`,
    );
  }
  return summary;
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
