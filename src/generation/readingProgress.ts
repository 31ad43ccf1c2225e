/** The server's prompt progress as the panel and the progress notification show it. */
import type { PromptProgress } from '../openai/types';

/** What is being read (the image's vision tower, then the prompt) and how far, in percent. */
export function readingProgress({ stage, done, total }: PromptProgress): {
  reading: PromptProgress['stage'];
  percent: number;
} {
  return { reading: stage, percent: (100 * done) / total };
}
