/**
 * The token ids of an engine's latest answers, which prompt lookup searches beside the prompt.
 * A model answers alike across screenshots (its boilerplate and CSS habits, the design system
 * of the app a user is working on), so a new answer often goes on the way an earlier one did.
 * Held in memory only, bounded in answers and in tokens.
 */
export class RecentAnswers {
  private answers: number[][] = [];

  constructor(
    private readonly most = 8,
    private readonly maxTokens = 32_768,
  ) {}

  /** Oldest first, as draftTokens takes its references. */
  get list(): readonly (readonly number[])[] {
    return this.answers;
  }

  add(tokenIds: readonly number[]): void {
    // A single token holds no n-gram to continue.
    if (tokenIds.length < 2) return;
    this.answers.push(tokenIds.slice(-this.maxTokens));
    let total = this.answers.reduce((sum, answer) => sum + answer.length, 0);
    while (this.answers.length > this.most || total > this.maxTokens) {
      total -= this.answers.shift()!.length;
    }
  }
}
