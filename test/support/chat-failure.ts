import { strict as assert } from 'node:assert';
import { ChatFailure } from '../../src/openai/errors';

/** The ChatFailure `promise` rejects with; fails the test if it resolves or rejects otherwise. */
export async function failureOf(promise: Promise<unknown>): Promise<ChatFailure> {
  try {
    await promise;
  } catch (error) {
    assert.ok(error instanceof ChatFailure, `expected a ChatFailure, got ${String(error)}`);
    return error;
  }
  assert.fail('expected the request to fail');
}
