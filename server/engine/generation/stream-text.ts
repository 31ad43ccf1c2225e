/**
 * Incremental detokenization: turns a growing list of token ids into text deltas that never
 * end inside a UTF-8 character. A byte-level BPE token can hold part of a character, which
 * decodes to U+FFFD until the rest arrives, so a delta is only released when the decoded
 * window does not end in U+FFFD. Only a short window of recent tokens is decoded each step
 * (the text-generation-inference scheme), so the cost per token stays constant.
 */
import type { TextTokenizer } from '../tokenizer/text-tokenizer';

export class TextStreamer {
  private readonly ids: number[] = [];
  /** Start of the window decoded for context. */
  private prefixOffset = 0;
  /** End of the text already released. */
  private readOffset = 0;

  constructor(private readonly tokenizer: Pick<TextTokenizer, 'decode'>) {}

  /** Adds one token; returns the newly complete text (possibly empty). */
  push(id: number): string {
    this.ids.push(id);
    const prefix = this.tokenizer.decode(this.ids.slice(this.prefixOffset, this.readOffset));
    const full = this.tokenizer.decode(this.ids.slice(this.prefixOffset));
    if (full.length > prefix.length && !full.endsWith('\uFFFD') && full.startsWith(prefix)) {
      this.prefixOffset = this.readOffset;
      this.readOffset = this.ids.length;
      return full.slice(prefix.length);
    }
    return '';
  }

  /** Releases whatever is still held back (an incomplete character shows as U+FFFD). */
  flush(): string {
    const prefix = this.tokenizer.decode(this.ids.slice(this.prefixOffset, this.readOffset));
    const full = this.tokenizer.decode(this.ids.slice(this.prefixOffset));
    this.prefixOffset = this.readOffset = this.ids.length;
    return full.length > prefix.length ? full.slice(prefix.length) : '';
  }
}
