/**
 * Checks chat messages from a caller and splits them into what the chat template sees (text
 * and image placeholders) and the image bytes, in order of appearance.
 */
import type { ChatMessage, ChatPart } from '../contracts';
import { EngineError } from '../errors';
import type { TemplateMessage } from './chat-template';

const ROLES = new Set(['system', 'user', 'assistant']);

export interface SplitMessages {
  templateMessages: TemplateMessage[];
  images: Uint8Array[];
}

export function splitMessages(messages: readonly ChatMessage[]): SplitMessages {
  if (!Array.isArray(messages) || messages.length === 0) {
    throw new EngineError('bad_request', 'messages must be a non-empty list');
  }
  const images: Uint8Array[] = [];
  const templateMessages = messages.map((message, index): TemplateMessage => {
    const where = `messages[${index}]`;
    if (!message || typeof message !== 'object') {
      throw new EngineError('bad_request', `${where} must be an object with role and content`);
    }
    if (!ROLES.has(message.role)) {
      throw new EngineError(
        'bad_request',
        `${where}.role is ${JSON.stringify(message.role)}; expected "system", "user" or "assistant"`,
      );
    }
    if (typeof message.content === 'string') {
      return { role: message.role, content: message.content };
    }
    if (!Array.isArray(message.content)) {
      throw new EngineError('bad_request', `${where}.content must be a string or a list of parts`);
    }
    const parts: ChatPart[] = message.content;
    const content = parts.map((part, partIndex) => {
      const partWhere = `${where}.content[${partIndex}]`;
      if (part?.type === 'text' && typeof part.text === 'string') {
        return { type: 'text' as const, text: part.text };
      }
      if (part?.type === 'image' && part.image instanceof Uint8Array) {
        images.push(part.image);
        return { type: 'image' as const };
      }
      throw new EngineError(
        'bad_request',
        `${partWhere} must be {type:"text", text} or {type:"image", image: bytes}`,
      );
    });
    return { role: message.role, content };
  });
  return { templateMessages, images };
}
