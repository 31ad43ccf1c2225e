import { strict as assert } from 'node:assert';
import { listModels } from '../../src/openai/models';
import { failureOf } from '../support/chat-failure';
import { startOpenAiStub, type OpenAiStub } from '../support/openai-stub-server';

describe('listModels (Choose Model… on an endpoint)', () => {
  let stub: OpenAiStub;
  beforeEach(async () => {
    stub = await startOpenAiStub({ deltas: [], apiKey: 'sk-test', models: ['qwen3-vl', 'other'] });
  });
  afterEach(() => stub.close());

  it('lists the ids the endpoint serves, with the key, with or without /v1', async () => {
    assert.deepEqual(await listModels(stub.url, 'sk-test', false), ['qwen3-vl', 'other']);
    assert.deepEqual(await listModels(stub.url.replace(/\/v1$/, '/'), 'sk-test', false), [
      'qwen3-vl',
      'other',
    ]);
    assert.equal(stub.requests[0]!.headers.authorization, 'Bearer sk-test');
  });

  it('asks for the API key when the endpoint refuses the request', async () => {
    const failure = await failureOf(listModels(stub.url, undefined, false));
    assert.equal(failure.kind, 'unauthorized');
    assert.deepEqual(failure.actions, ['setApiKey', 'openSettings']);
  });

  it('gives up on an endpoint that does not answer, pointing at the settings', async () => {
    stub.behaviour.modelsDelayMs = 5000;
    const failure = await failureOf(listModels(stub.url, 'sk-test', false, 200));
    assert.equal(failure.kind, 'unreachable');
    assert.deepEqual(failure.actions, ['openSettings']);
    assert.match(failure.message, /timeout/i);
  });
});
