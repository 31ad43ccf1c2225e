import { strict as assert } from 'node:assert';
import { formatCode, formatLanguageFor } from '../../src/format/formatCode';

describe('formatCode', () => {
  it('formats HTML with its embedded CSS and script', async () => {
    const result = await formatCode(
      '<html><head><style>body{margin:0;color:red}</style></head><body><div><p>Hi</p></div><script>const a={b:1}</script></body></html>',
      'html',
    );
    assert.deepEqual(result.warnings, []);
    assert.match(result.code, /body \{\n\s+margin: 0;\n\s+color: red;\n\s+\}/);
    assert.match(result.code, /const a = \{ b: 1 \};/);
    assert.ok(result.code.endsWith('</html>\n'));
  });

  it('formats CSS, JavaScript and JSX', async () => {
    assert.equal((await formatCode('a{color:red}', 'css')).code, 'a {\n  color: red;\n}\n');
    assert.equal((await formatCode('let x=1', 'javascript')).code, 'let x = 1;\n');
    const jsx = await formatCode(
      'export default function A(){return <div className="a"><p>x</p></div>}',
      'javascriptreact',
    );
    assert.deepEqual(jsx.warnings, []);
    assert.match(jsx.code, /return \(\n\s+<div className="a">/);
  });

  it('keeps code it cannot parse, unformatted, with a warning', async () => {
    const broken = 'export default function A() { return <div>; }';
    const result = await formatCode(broken, 'javascriptreact');
    assert.equal(result.code, broken);
    assert.equal(result.warnings.length, 1);
    assert.match(result.warnings[0]!, /left unformatted/);
  });

  it('knows which languages it formats', () => {
    assert.equal(formatLanguageFor('javascriptreact'), 'javascriptreact');
    assert.equal(formatLanguageFor('xml'), undefined);
  });
});
