import { strict as assert } from 'node:assert';
import { extractCode } from '../../src/generation/extractCode';

describe('extractCode', () => {
  it('drops the prose around a fenced block', () => {
    const reply = 'Here is your page:\n\n```html\n<!doctype html>\n<p>Hi</p>\n```\n\nEnjoy!';
    assert.deepEqual(extractCode(reply, 'html', true), {
      code: '<!doctype html>\n<p>Hi</p>',
      language: 'html',
      complete: true,
    });
  });

  it('yields the open block so far while streaming, holding back a half-written closing fence', () => {
    assert.equal(extractCode('Sure.\n```html\n<div>\n  <p>a', 'html', false).code, '<div>\n  <p>a');
    const partialClose = extractCode('```html\n<div></div>\n``', 'html', false);
    assert.equal(partialClose.code, '<div></div>');
    assert.equal(partialClose.complete, false);
  });

  it('yields nothing while the opening fence line is still arriving', () => {
    assert.equal(extractCode('Sure.\n```ht', 'html', false).code, '');
  });

  it('picks the block whose language suits the target, then the longest', () => {
    const reply =
      '```css\nbody { margin: 0 }\n```\n```jsx\nexport default function A() { return <p/>; }\n```';
    assert.equal(
      extractCode(reply, 'react', true).code,
      'export default function A() { return <p/>; }',
    );
    const twoHtml =
      '```html\n<p>short</p>\n```\ntext\n```html\n<main><p>longer one</p></main>\n```';
    assert.equal(extractCode(twoHtml, 'html', true).code, '<main><p>longer one</p></main>');
  });

  it('treats a fence with more backticks as needing an equally long closing fence', () => {
    const reply = '````md\n```html\n<p/>\n```\n````';
    assert.equal(extractCode(reply, 'html', true).code, '```html\n<p/>\n```');
  });

  it('takes unfenced code from its first tag to its last closing tag', () => {
    const reply = 'Here it is: <!DOCTYPE html><html><body></body></html> Hope this helps.';
    assert.equal(
      extractCode(reply, 'html', true).code,
      '<!DOCTYPE html><html><body></body></html>',
    );
    const xml = 'Diagram:\n<mxfile><diagram/></mxfile>\nDone.';
    assert.equal(extractCode(xml, 'drawio', true).code, '<mxfile><diagram/></mxfile>');
  });

  it('drops a reasoning block and keeps a reply without code whole at the end', () => {
    assert.equal(
      extractCode('<think>plan</think>```jsx\nconst a = 1;\n```', 'react', true).code,
      'const a = 1;',
    );
    assert.equal(extractCode('<think>still thinking', 'html', false).code, '');
    assert.equal(
      extractCode('I cannot see an interface here.', 'html', true).code,
      'I cannot see an interface here.',
    );
    assert.equal(extractCode('I cannot see', 'html', false).code, '');
  });

  it('handles CRLF line ends', () => {
    assert.equal(extractCode('```html\r\n<p/>\r\n```\r\n', 'html', true).code, '<p/>');
  });
});
