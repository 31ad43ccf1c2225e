/** The benchmarks' stand-in for a user's screenshot. */
import sharp from 'sharp';

/** A screenshot-like PNG: a header bar, a sidebar, cards and text lines on a light page. */
export async function screenshot([width, height]: [number, number]): Promise<Uint8Array> {
  const rects: string[] = [
    `<rect width="${width}" height="${Math.round(height * 0.08)}" fill="#1f6feb"/>`,
    `<rect y="${Math.round(height * 0.08)}" width="${Math.round(width * 0.18)}" height="${height}" fill="#f0f3f6"/>`,
  ];
  for (let i = 0; i < 6; i++) {
    const x = Math.round(width * (0.22 + (i % 3) * 0.26));
    const y = Math.round(height * (0.15 + Math.floor(i / 3) * 0.4));
    rects.push(
      `<rect x="${x}" y="${y}" width="${Math.round(width * 0.23)}" height="${Math.round(height * 0.33)}" rx="8" fill="#ffffff" stroke="#d0d7de"/>`,
      `<text x="${x + 12}" y="${y + 32}" font-size="20" fill="#24292f">Card ${i + 1}</text>`,
    );
  }
  const svg = `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}"><rect width="100%" height="100%" fill="#fafbfc"/>${rects.join('')}</svg>`;
  return new Uint8Array(await sharp(Buffer.from(svg)).png().toBuffer());
}
