/** The tiny Qwen3-VL golden checkpoint and its reference chats, for tests on the real engine. */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

export const TINY_DIR = join(__dirname, '..', '..', 'fixtures', 'qwen3vl-tiny');
export const TINY_MODEL_DIR = join(TINY_DIR, 'model');

export interface GoldenChat {
  name: string;
  messages: {
    role: string;
    content: string | ({ type: 'image' } | { type: 'text'; text: string })[];
  }[];
  images: string[];
  greedy_new_tokens: number[];
  greedy_text: string;
}

export function goldenChats(): GoldenChat[] {
  return JSON.parse(readFileSync(join(TINY_DIR, 'golden.json'), 'utf8')).cases;
}

export function imageBytes(name: string): Buffer {
  return readFileSync(join(TINY_DIR, 'images', name));
}

export function dataUrl(bytes: Buffer, type = 'image/png'): string {
  return `data:${type};base64,${bytes.toString('base64')}`;
}

/** A golden chat as OpenAI messages, its images inline as data: URLs in order. */
export function openAiMessages(chat: GoldenChat) {
  let next = 0;
  return chat.messages.map((message) => ({
    role: message.role,
    content:
      typeof message.content === 'string'
        ? message.content
        : message.content.map((part) =>
            part.type === 'image'
              ? { type: 'image_url', image_url: { url: dataUrl(imageBytes(chat.images[next++])) } }
              : part,
          ),
  }));
}

/** The same chat in the engine's own message format. */
export function engineMessages(chat: GoldenChat) {
  let next = 0;
  return chat.messages.map((message) => ({
    role: message.role as 'system' | 'user' | 'assistant',
    content:
      typeof message.content === 'string'
        ? message.content
        : message.content.map((part) =>
            part.type === 'image'
              ? { type: 'image' as const, image: new Uint8Array(imageBytes(chat.images[next++])) }
              : part,
          ),
  }));
}
