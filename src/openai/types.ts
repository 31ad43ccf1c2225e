/** The slice of the OpenAI chat completions protocol this extension speaks. */

export type ContentPart =
  { type: 'text'; text: string } | { type: 'image_url'; image_url: { url: string } };

export interface ChatMessage {
  role: 'system' | 'user' | 'assistant';
  content: string | ContentPart[];
}

export interface ChatRequest {
  model: string;
  messages: ChatMessage[];
  max_tokens?: number;
  temperature?: number;
  top_p?: number;
}

export interface StreamStats {
  text: string;
  /** Completion tokens: the server's usage figure when it sends one, else the chunk count. */
  tokens: number;
  finishReason?: string;
  elapsedMs: number;
}

/** How far the server has read the prompt: an image's vision tower, then the prompt's tokens. */
export interface PromptProgress {
  stage: 'image' | 'prompt';
  done: number;
  total: number;
}
