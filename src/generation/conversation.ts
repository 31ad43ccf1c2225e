/**
 * Which conversation a refinement continues. While the code is still what the model wrote, the
 * one the model saw, its replies word for word: a server that kept its KV cache (this
 * extension's, vLLM's prefix cache, llama.cpp's) then reads only the new request. Sending the
 * code back formatted, as refinements did before, changed the model's turn, and the server read
 * the whole page again (a 2,100-token page on the 2-core CPU: first token after 26.3 s instead of
 * 1.1). Once the user edits the code, or the conversation grows long, it starts again from the
 * code as it stands.
 */
import type { ChatMessage } from '../openai/types';
import type { SourceImage } from './api';
import type { HistoryRecord } from './history';
import {
  type Conversation,
  FENCE_BY_TARGET,
  codeAsReply,
  generationMessages,
  imageDataUrl,
  refinementMessages,
} from './prompts';

/** Past this many characters of turns a refinement starts again from the code alone. */
export const CONVERSATION_LIMIT = 48_000;

/** What a finished generation left: the model's reply, and the code taken from it. */
export interface ModelReply {
  reply: string;
  code: string;
  /** The reply ended on its own, not cut off by max tokens. */
  complete: boolean;
}

/** The model's turn: its reply word for word, or the final code where the reply was cut short. */
export function modelTurn(outcome: ModelReply, fence: string): ChatMessage {
  return outcome.complete
    ? { role: 'assistant', content: outcome.reply }
    : codeAsReply(outcome.code, fence);
}

/**
 * The conversation to refine `code` (the document's text now) in: the kept one while the code
 * is the one it produced (`lastCode`), else the first request and the code as it stands.
 * `fallbackInstruction`: the first request's, for records kept before conversations were.
 */
export function conversationToRefine(
  kept: Conversation | undefined,
  lastCode: string,
  code: string,
  fence: string,
  fallbackInstruction: string,
): Conversation {
  if (kept && code === lastCode && characters(kept) <= CONVERSATION_LIMIT) return kept;
  return {
    instruction: kept?.instruction ?? fallbackInstruction,
    turns: [codeAsReply(code, fence)],
  };
}

function characters(conversation: Conversation): number {
  let count = 0;
  for (const turn of conversation.turns) {
    count += typeof turn.content === 'string' ? turn.content.length : 0;
  }
  return count;
}

/**
 * A refinement's messages for the code now in the document (`current`, '' when none is open),
 * and the conversation they continue.
 */
export function refinementOf(
  record: HistoryRecord,
  image: SourceImage,
  current: string,
  instruction: string,
): { earlier: Conversation; messages: ChatMessage[] } {
  const earlier = conversationToRefine(
    record.conversation,
    record.code,
    current || record.code,
    FENCE_BY_TARGET[record.target],
    record.instruction,
  );
  const first = generationMessages(
    record.target,
    imageDataUrl(image.bytes, image.mimeType),
    earlier.instruction,
  );
  return { earlier, messages: refinementMessages([...first, ...earlier.turns], instruction) };
}
