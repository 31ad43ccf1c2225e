/** The shapes of OpenAI chat completion responses and stream chunks. */
import type { GenerationResult } from '../engine/contracts';

export type FinishReason = 'stop' | 'length';

export interface Usage {
  prompt_tokens: number;
  completion_tokens: number;
  total_tokens: number;
}

export interface CompletionIdentity {
  id: string;
  created: number;
  model: string;
}

export function usageOf(result: GenerationResult): Usage {
  const prompt = result.promptTokenIds.length;
  const completion = result.tokenIds.length;
  return {
    prompt_tokens: prompt,
    completion_tokens: completion,
    total_tokens: prompt + completion,
  };
}

export function finishReasonOf(result: GenerationResult): FinishReason {
  return result.finishReason === 'length' ? 'length' : 'stop';
}

export function completionBody(identity: CompletionIdentity, result: GenerationResult) {
  return {
    ...identity,
    object: 'chat.completion',
    choices: [
      {
        index: 0,
        message: { role: 'assistant', content: result.text },
        finish_reason: finishReasonOf(result),
        logprobs: null,
      },
    ],
    usage: usageOf(result),
  };
}

export function chunkBody(
  identity: CompletionIdentity,
  delta: { role?: 'assistant'; content?: string },
  finishReason: FinishReason | null = null,
  usage?: Usage,
) {
  return {
    ...identity,
    object: 'chat.completion.chunk',
    choices: [{ index: 0, delta, finish_reason: finishReason, logprobs: null }],
    ...(usage && { usage }),
  };
}
