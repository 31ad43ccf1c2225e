// The command and history paths around a generation, against the loopback OpenAI stand-in:
// the explorer's "generate from image file" command, reopening a generation from the
// history (also where its images cannot be written), and a draw.io PNG export whose diagram
// opens without inference.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import * as vscode from 'vscode';
import type { DesignToCodeExtension } from '../../../src/extension';
import type { GenerationResult } from '../../../src/generation/api';
import { HistoryStore } from '../../../src/generation/history';
import { toDeltas, type OpenAiStub } from '../../support/openai-stub-server';
import { pngChunk, withChunkAfterIhdr } from '../../support/png';
import { closeAllEditors, documentFor, fixtureImage, requestId, useOpenAiStub } from './helpers';

const REPLY =
  '```jsx\nexport default function Card(){return <div className="card"><p>Hi</p></div>}\n```';
const EXPECTED =
  'export default function Card() {\n  return (\n    <div className="card">\n      <p>Hi</p>\n    </div>\n  );\n}\n';

const DIAGRAM =
  '<mxfile host="drawio"><diagram id="d1" name="Page-1"><mxGraphModel><root><mxCell id="0"/>' +
  '<mxCell id="1" parent="0"/><mxCell id="a" value="Box" vertex="1" parent="1">' +
  '<mxGeometry x="10" y="10" width="80" height="40" as="geometry"/></mxCell></root></mxGraphModel></diagram></mxfile>';

/** The fixture PNG with a tEXt "mxfile" chunk after IHDR, the way draw.io exports one. */
function withDiagram(png: Uint8Array, xml: string): Uint8Array {
  const text = Buffer.from(`mxfile\0${encodeURIComponent(xml)}`, 'latin1');
  return withChunkAfterIhdr(png, pngChunk('tEXt', text));
}

describe('commands, history and embedded diagrams', function () {
  this.timeout(60_000);
  let extension: DesignToCodeExtension;
  let stub: OpenAiStub;
  let restore: () => Promise<void>;

  before(async () => {
    ({ extension, stub, restore } = await useOpenAiStub(
      { deltas: toDeltas(REPLY) },
      { insertMode: 'new-document', defaultTarget: 'react', previewAutoOpen: false },
    ));
  });

  after(async () => {
    await restore();
    await closeAllEditors();
  });

  it('generates from an image file given by the explorer, with the default target', async () => {
    const folder = vscode.workspace.workspaceFolders?.[0]?.uri;
    assert.ok(folder, 'the extension tests need a workspace folder');
    const file = vscode.Uri.joinPath(folder, 'card.png');
    await vscode.workspace.fs.writeFile(file, fixtureImage().bytes);
    const result = (await vscode.commands.executeCommand('designToCode.generateFromFile', file)) as
      GenerationResult | undefined;
    assert.ok(result, 'the command returned no result (see the error notification)');
    assert.equal(result.outcome, 'done');
    const document = documentFor(result.documentUri);
    assert.equal(document.languageId, 'javascriptreact');
    assert.equal(document.getText(), EXPECTED);
  });

  it('reopens an earlier generation from the history', async () => {
    const result = await extension.api.generate(
      { requestId: requestId(), image: fixtureImage(), target: 'react', instruction: 'a card' },
      () => undefined,
    );
    // A formatting failure leaves the code as the model wrote it and says why here.
    assert.deepEqual(result.warnings, []);
    const entry = extension.api.history().find((candidate) => candidate.id === result.historyId);
    assert.ok(entry);
    assert.equal(entry.summary, 'Card');
    assert.equal(entry.instruction, 'a card');
    assert.match(entry.thumbnail, /^data:image\/png;base64,/);
    await closeAllEditors();
    await extension.api.openHistory(result.historyId);
    const reopened = vscode.window.activeTextEditor?.document;
    assert.ok(reopened);
    assert.equal(reopened.getText(), EXPECTED);
    const source = extension.api.sourceImageFor(reopened.uri.toString());
    assert.ok(source, 'the reopened document lost its source image');
    assert.ok(Buffer.from(source.bytes).equals(Buffer.from(fixtureImage().bytes)));
  });

  it('finds the diagram a draw.io PNG carries and opens it without inference', async () => {
    const image = { ...fixtureImage(), bytes: withDiagram(fixtureImage().bytes, DIAGRAM) };
    assert.equal(extension.api.embeddedDiagram(image), DIAGRAM);
    assert.equal(extension.api.embeddedDiagram(fixtureImage()), undefined);
    stub.requests.length = 0;
    await extension.api.openEmbeddedDiagram(image);
    const document = vscode.window.activeTextEditor?.document;
    assert.ok(document);
    assert.equal(document.languageId, 'xml');
    assert.equal(document.getText(), DIAGRAM + '\n');
    assert.equal(
      stub.requests.length,
      0,
      'the model was asked although the diagram was in the image',
    );
  });
});

/** VS Code's Memento, in memory: the state a HistoryStore keeps its list in. */
class MemoryMemento implements vscode.Memento {
  private readonly values = new Map<string, unknown>();
  keys(): readonly string[] {
    return [...this.values.keys()];
  }
  get<T>(key: string, fallback?: T): T | undefined {
    return this.values.has(key) ? (this.values.get(key) as T) : fallback;
  }
  update(key: string, value: unknown): Thenable<void> {
    this.values.set(key, value);
    return Promise.resolve();
  }
}

describe('the history where its images cannot be written', () => {
  let dir: string;
  before(() => {
    dir = mkdtempSync(path.join(tmpdir(), 'd2c-history-'));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  const generation = {
    target: 'html' as const,
    instruction: 'dark theme',
    image: fixtureImage(),
    code: '<p>Hi</p>',
    languageId: 'html',
    conversation: { instruction: 'dark theme', turns: [] },
  };

  it('keeps the image in memory for this session and says why it was not written', async () => {
    // A file where the storage folder should be: nothing can be written under it.
    const blocked = path.join(dir, 'not-a-folder');
    writeFileSync(blocked, '');
    const store = new HistoryStore(new MemoryMemento(), vscode.Uri.file(path.join(blocked, 'h')));
    const { record, imageNotSaved } = await store.add(generation);
    assert.ok(imageNotSaved, 'no reason given');
    assert.equal(store.get(record.id)?.code, '<p>Hi</p>');
    assert.deepEqual((await store.image(record)).bytes, generation.image.bytes);
  });

  it('writes it to the storage folder otherwise', async () => {
    const storage = vscode.Uri.file(path.join(dir, 'storage'));
    const { record, imageNotSaved } = await new HistoryStore(new MemoryMemento(), storage).add(
      generation,
    );
    assert.equal(imageNotSaved, undefined);
    const onDisk = await vscode.workspace.fs.readFile(
      vscode.Uri.joinPath(storage, record.imageFile),
    );
    assert.deepEqual(new Uint8Array(onDisk), generation.image.bytes);
  });
});
