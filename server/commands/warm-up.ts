/**
 * GPU providers compile their shaders on the first run of each kind of shape (a prefill, a
 * decode step, a verification run of drafted tokens, the vision tower): measured over WebGPU,
 * a refinement's speculative decode ran at a tenth of its later speed the first time. One
 * short generation before `serve` reports ready moves that cost from the user's first request
 * to start-up. The CPU provider compiles nothing, so it is not warmed up.
 */
import sharp from 'sharp';
import type { Engine } from '../engine/contracts';

export function needsWarmUp(engine: Engine): boolean {
  return engine.info.device !== 'cpu';
}

/** Runs the warm-up generation; resolves with its duration in ms. */
export async function warmUp(engine: Engine): Promise<number> {
  const started = performance.now();
  const image = await sharp({
    create: { width: 64, height: 64, channels: 3, background: '#ffffff' },
  })
    .png()
    .toBuffer();
  // A repeating text makes prompt lookup draft tokens, so verification runs compile too.
  await engine.generate({
    messages: [
      {
        role: 'user',
        content: [
          { type: 'image', image: new Uint8Array(image) },
          { type: 'text', text: '<div><div><div><div><div><div>' },
        ],
      },
    ],
    maxNewTokens: 8,
    sampling: { greedy: true },
    speculation: true,
  });
  return performance.now() - started;
}
