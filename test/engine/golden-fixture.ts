/** Reads the golden Qwen3-VL fixtures (test/fixtures/qwen3vl-tiny) for the engine tests. */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { ChatMessage } from '../../server/engine/contracts';

export const TINY_DIR = join(__dirname, '..', 'fixtures', 'qwen3vl-tiny');
export const TINY_MODEL_DIR = join(TINY_DIR, 'model');
export const TINY_IMAGES_DIR = join(TINY_DIR, 'images');

export interface TensorRef {
  file: string;
  shape: number[];
}

export interface GoldenCase {
  name: string;
  messages: {
    role: 'system' | 'user' | 'assistant';
    content: string | ({ type: 'image' } | { type: 'text'; text: string })[];
  }[];
  images: string[];
  prompt: string;
  input_ids: number[];
  image_grid_thw?: [number, number, number][];
  pixel_values?: TensorRef;
  position_ids: [number[], number[], number[]];
  rope_deltas: number[][];
  greedy_new_tokens: number[];
  greedy_text: string;
  /** Per greedy step: the reference's logit gap between its best and second-best token. */
  greedy_top2_margins: number[];
}

export function goldenCases(): GoldenCase[] {
  return JSON.parse(readFileSync(join(TINY_DIR, 'golden.json'), 'utf8')).cases;
}

export function readTensor(ref: TensorRef): Float32Array {
  const bytes = readFileSync(join(TINY_DIR, ref.file));
  return new Float32Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.length));
}

/** The golden case's messages with its image files filled in as bytes. */
export function goldenMessages(c: GoldenCase): ChatMessage[] {
  const images = c.images.map((name) => new Uint8Array(readFileSync(join(TINY_IMAGES_DIR, name))));
  let next = 0;
  return c.messages.map((m) => ({
    role: m.role,
    content:
      typeof m.content === 'string'
        ? m.content
        : m.content.map((part) =>
            part.type === 'image' ? { type: 'image' as const, image: images[next++] } : part,
          ),
  }));
}
