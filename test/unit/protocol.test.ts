import { strict as assert } from 'node:assert';
import { MAX_IMAGE_BYTES, MAX_INSTRUCTION_CHARS, type PanelToHost } from '../../src/protocol/panel';
import type { PreviewToHost } from '../../src/protocol/preview';
import { validatePanelMessage, validatePreviewMessage } from '../../src/protocol/validate';

const image = { name: 'mockup.png', mimeType: 'image/png', base64: 'iVBORw0KGgo=' } as const;

const validPanelMessages: PanelToHost[] = [
  { type: 'ready' },
  { type: 'imageChosen', image },
  { type: 'pickFile' },
  { type: 'generate', requestId: 'r1', image, target: 'html', instruction: '' },
  { type: 'generate', requestId: 'r2', image, target: 'drawio', instruction: 'use blue' },
  { type: 'refine', requestId: 'r3', instruction: 'make the header sticky' },
  { type: 'readAhead', next: { kind: 'refine', instruction: 'make the header sti' } },
  { type: 'readAhead', next: { kind: 'generate', target: 'react', instruction: '' } },
  { type: 'stop', requestId: 'r3' },
  { type: 'useEmbeddedDiagram' },
  { type: 'openHistory', historyId: 'h-42' },
  { type: 'runAction', action: 'downloadModel' },
  { type: 'runAction', action: 'setApiKey' },
];

function rejected(data: unknown): string {
  const result = validatePanelMessage(data);
  assert.equal(result.ok, false, `accepted ${JSON.stringify(data)?.slice(0, 200)}`);
  return result.ok ? '' : result.error;
}

describe('panel message validation', () => {
  for (const message of validPanelMessages) {
    it(`accepts ${JSON.stringify(message).slice(0, 70)}`, () => {
      const result = validatePanelMessage(structuredClone(message));
      assert.deepEqual(result, { ok: true, value: message });
    });
  }

  it('rejects what is not a message object', () => {
    for (const data of [null, undefined, 42, 'ready', [], [{ type: 'ready' }]]) rejected(data);
  });

  it('rejects an unknown message type', () => {
    assert.match(rejected({ type: 'deleteEverything' }), /type/);
  });

  it('rejects missing and extra fields', () => {
    rejected({ type: 'stop' });
    rejected({ type: 'imageChosen' });
    rejected({ type: 'ready', extra: true });
    rejected({ type: 'generate', requestId: 'r', image, target: 'html' });
  });

  it('rejects fields of the wrong type or out of range', () => {
    const generate = { type: 'generate', requestId: 'r', image, target: 'html', instruction: '' };
    rejected({ ...generate, requestId: '' });
    rejected({ ...generate, requestId: 7 });
    rejected({ ...generate, target: 'python' });
    rejected({ ...generate, instruction: 'x'.repeat(MAX_INSTRUCTION_CHARS + 1) });
    rejected({ type: 'openHistory', historyId: 'h'.repeat(129) });
    rejected({ type: 'runAction', action: 'rm -rf /' });
    rejected({ type: 'refine', requestId: 'r', instruction: '' });
    rejected({ type: 'readAhead', next: { kind: 'refine', instruction: '' } });
    rejected({ type: 'readAhead', next: { kind: 'refine', instruction: 'x' }, requestId: 'r' });
    rejected({ type: 'readAhead', next: { kind: 'generate', target: 'svelte', instruction: '' } });
    rejected({ type: 'readAhead', next: { kind: 'generate', instruction: 'x' } });
    rejected({ type: 'readAhead', instruction: 'x' });
  });

  it('rejects images of another format, not base64, or over the size limit', () => {
    rejected({ type: 'imageChosen', image: { ...image, mimeType: 'text/html' } });
    rejected({ type: 'imageChosen', image: { ...image, base64: '<script>' } });
    rejected({ type: 'imageChosen', image: { ...image, base64: '' } });
    const tooBig = 'A'.repeat(Math.ceil(MAX_IMAGE_BYTES / 3) * 4 + 4);
    assert.match(rejected({ type: 'imageChosen', image: { ...image, base64: tooBig } }), /20 MB/);
  });

  it('accepts an image right at the size limit', () => {
    const atLimit = 'A'.repeat(Math.ceil(MAX_IMAGE_BYTES / 3) * 4);
    const result = validatePanelMessage({
      type: 'imageChosen',
      image: { ...image, base64: atLimit },
    });
    assert.equal(result.ok, true);
  });
});

describe('preview message validation', () => {
  const valid: PreviewToHost[] = [
    { type: 'ready' },
    { type: 'renderFailed', message: 'the diagram XML does not parse' },
  ];
  for (const message of valid) {
    it(`accepts a valid ${message.type} message`, () => {
      assert.deepEqual(validatePreviewMessage(message), { ok: true, value: message });
    });
  }

  it('rejects malformed preview messages', () => {
    for (const data of [
      null,
      { type: 'render' },
      { type: 'renderFailed' },
      { type: 'renderFailed', message: 3 },
      { type: 'renderFailed', message: 'x'.repeat(2001) },
      { type: 'ready', url: 'https://example.com' },
    ]) {
      assert.equal(validatePreviewMessage(data).ok, false, JSON.stringify(data).slice(0, 100));
    }
  });
});
