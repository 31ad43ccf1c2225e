/**
 * The tiny Qwen3-VL golden checkpoint and its reference chats for the server tests: the
 * engine tests' fixture reader, plus the chats as an OpenAI client sends them.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { goldenMessages, TINY_IMAGES_DIR, type GoldenCase } from '../../engine/golden-fixture';

export {
  goldenCases,
  goldenMessages,
  TINY_MODEL_DIR,
  type GoldenCase,
} from '../../engine/golden-fixture';

export function imageBytes(name: string): Buffer {
  return readFileSync(join(TINY_IMAGES_DIR, name));
}

export function dataUrl(bytes: Buffer, type = 'image/png'): string {
  return `data:${type};base64,${bytes.toString('base64')}`;
}

/** A golden chat as OpenAI messages, its images inline as data: URLs in order. */
export function openAiMessages(chat: GoldenCase) {
  return goldenMessages(chat).map((message) => ({
    role: message.role,
    content:
      typeof message.content === 'string'
        ? message.content
        : message.content.map((part) =>
            part.type === 'image'
              ? { type: 'image_url', image_url: { url: dataUrl(Buffer.from(part.image)) } }
              : part,
          ),
  }));
}
