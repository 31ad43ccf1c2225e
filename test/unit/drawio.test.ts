import { strict as assert } from 'node:assert';
import { deflateRawSync, deflateSync } from 'node:zlib';
import sharp from 'sharp';
import { checkDiagram } from '../../src/drawio/validate';
import { toDrawioDocument } from '../../src/drawio/wrap';
import { diagramFromSvg, embeddedDiagram } from '../../src/drawio/embedded';
import { pngChunk, withChunkAfterIhdr } from '../support/png';

const MODEL =
  '<mxGraphModel><root><mxCell id="0"/><mxCell id="1" parent="0"/>' +
  '<mxCell id="a" value="A" vertex="1" parent="1"><mxGeometry x="0" y="0" width="80" height="40" as="geometry"/></mxCell>' +
  '<mxCell id="b" value="B" vertex="1" parent="1"><mxGeometry x="200" y="0" width="80" height="40" as="geometry"/></mxCell>' +
  '<mxCell id="e" edge="1" parent="1" source="a" target="b"><mxGeometry relative="1" as="geometry"/></mxCell>' +
  '</root></mxGraphModel>';
const MXFILE = `<mxfile host="test"><diagram id="p1" name="Page-1">${MODEL}</diagram></mxfile>`;

/** draw.io's compressed page: base64(deflateRaw(encodeURIComponent(xml))). */
function compress(xml: string): string {
  return deflateRawSync(Buffer.from(encodeURIComponent(xml), 'latin1')).toString('base64');
}

describe('Draw.io checks', () => {
  it('accepts a sound mxfile and a sound mxGraphModel', () => {
    assert.deepEqual(checkDiagram(MXFILE), {
      wellFormed: true,
      root: 'mxfile',
      problems: [],
      cellCount: 5,
    });
    assert.equal(checkDiagram(MODEL).root, 'mxGraphModel');
    assert.deepEqual(checkDiagram(`<?xml version="1.0"?>\n${MODEL}`).problems, []);
  });

  it('reads compressed pages', () => {
    const file = `<mxfile><diagram id="p" name="P">${compress(MODEL)}</diagram></mxfile>`;
    assert.deepEqual(checkDiagram(file).problems, []);
    assert.equal(checkDiagram(file).cellCount, 5);
  });

  it('says where XML is not well-formed', () => {
    const check = checkDiagram('<mxGraphModel><root><mxCell id="0"></root></mxGraphModel>');
    assert.equal(check.wellFormed, false);
    assert.match(check.problems[0]!, /not well-formed: .* \(line 1, column \d+\)/);
  });

  it('names a wrong root, duplicate ids, dangling edges and missing parents', () => {
    assert.match(checkDiagram('<svg/>').problems[0]!, /root element is <svg>/);
    const bad = MODEL.replace('id="b"', 'id="a"').replace('parent="1" source', 'parent="9" source');
    assert.deepEqual(checkDiagram(bad).problems, [
      'cell id "a" is used more than once.',
      'cell "e" has parent "9", which does not exist.',
      'edge "e" has target "b", which does not exist.',
    ]);
  });

  it('counts cells wrapped in <object> and checks edges to them', () => {
    const wrapped = MODEL.replace(
      '<mxCell id="b" value="B" vertex="1" parent="1">',
      '<object id="b" label="B"><mxCell vertex="1" parent="1">',
    ).replace(
      'as="geometry"/></mxCell><mxCell id="e"',
      'as="geometry"/></mxCell></object><mxCell id="e"',
    );
    assert.deepEqual(checkDiagram(wrapped).problems, []);
  });

  it('wraps an mxGraphModel into an mxfile that passes the checks, and keeps an mxfile as it is', () => {
    const document = toDrawioDocument(MODEL);
    assert.deepEqual(document.warnings, []);
    assert.match(
      document.xml,
      /^<mxfile host="design-to-code">\n  <diagram id="[^"]+" name="Page-1">/,
    );
    assert.deepEqual(checkDiagram(document.xml), {
      wellFormed: true,
      root: 'mxfile',
      problems: [],
      cellCount: 5,
    });
    assert.equal(toDrawioDocument(MXFILE).xml, MXFILE + '\n');
  });

  it('keeps invalid XML whole, with warnings', () => {
    const broken = '<mxGraphModel><root>';
    const document = toDrawioDocument(broken);
    assert.equal(document.xml, broken + '\n');
    assert.match(document.warnings[0]!, /^Draw.io: The XML is not well-formed/);
  });
});

/** A real PNG with one extra chunk after IHDR, the way draw.io writes its export. */
async function pngWith(type: string, data: Buffer): Promise<Uint8Array> {
  const png = await sharp({ create: { width: 4, height: 3, channels: 3, background: '#fff' } })
    .png()
    .toBuffer();
  return withChunkAfterIhdr(png, pngChunk(type, data));
}

describe('embedded Draw.io diagrams', () => {
  it('finds the URL-encoded mxfile in a tEXt chunk, as draw.io exports it', async () => {
    const png = await pngWith(
      'tEXt',
      Buffer.from(`mxfile\0${encodeURIComponent(MXFILE)}`, 'latin1'),
    );
    assert.equal(embeddedDiagram(png, 'image/png'), MXFILE);
  });

  it('finds it in zTXt and in compressed and plain iTXt chunks', async () => {
    const encoded = encodeURIComponent(MXFILE);
    const ztxt = Buffer.concat([
      Buffer.from('mxfile\0\0', 'latin1'),
      deflateSync(Buffer.from(encoded)),
    ]);
    assert.equal(embeddedDiagram(await pngWith('zTXt', ztxt), 'image/png'), MXFILE);
    const itxt = (compressed: boolean) =>
      Buffer.concat([
        Buffer.from(`mxfile\0${compressed ? '\x01' : '\0'}\0\0\0`, 'latin1'),
        compressed ? deflateSync(Buffer.from(encoded)) : Buffer.from(encoded),
      ]);
    assert.equal(embeddedDiagram(await pngWith('iTXt', itxt(true)), 'image/png'), MXFILE);
    assert.equal(embeddedDiagram(await pngWith('iTXt', itxt(false)), 'image/png'), MXFILE);
  });

  it('finds nothing in a plain PNG, another keyword, a JPEG or a truncated PNG', async () => {
    const plain = await sharp({ create: { width: 2, height: 2, channels: 3, background: '#000' } })
      .png()
      .toBuffer();
    assert.equal(embeddedDiagram(plain, 'image/png'), undefined);
    const other = await pngWith('tEXt', Buffer.from('Software\0draw.io', 'latin1'));
    assert.equal(embeddedDiagram(other, 'image/png'), undefined);
    const jpeg = await sharp(plain).jpeg().toBuffer();
    assert.equal(embeddedDiagram(jpeg, 'image/jpeg'), undefined);
    const withDiagram = await pngWith(
      'tEXt',
      Buffer.from(`mxfile\0${encodeURIComponent(MXFILE)}`, 'latin1'),
    );
    assert.equal(embeddedDiagram(withDiagram.subarray(0, 40), 'image/png'), undefined);
  });

  it('reads the content attribute of a draw.io SVG export', () => {
    const compressedFile = `<mxfile host="65bd71144e"><diagram id="CqI" name="Page-1">${compress(MODEL)}</diagram></mxfile>`;
    const escaped = compressedFile
      .replace(/&/g, '&amp;')
      .replace(/</g, '&lt;')
      .replace(/>/g, '&gt;')
      .replace(/"/g, '&quot;');
    const svg = `<svg host="65bd71144e" xmlns="http://www.w3.org/2000/svg" version="1.1" width="11px" height="11px" content="${escaped}"><defs/><g/></svg>`;
    const found = diagramFromSvg(svg);
    assert.equal(found, compressedFile);
    assert.deepEqual(checkDiagram(found!).problems, []);
    assert.equal(embeddedDiagram(Buffer.from(svg), 'image/svg+xml'), compressedFile);
    assert.equal(diagramFromSvg('<svg xmlns="http://www.w3.org/2000/svg"><g/></svg>'), undefined);
  });
});
