// Generation against a loopback OpenAI-compatible stand-in for a remote endpoint: the
// document receives exactly the extracted, formatted code and undoes in one step; Stop ends
// the stream; a bad key, endpoint or model gives the right message and action.
import assert from 'node:assert/strict';
import * as vscode from 'vscode';
import type { DesignToCodeExtension } from '../../../src/extension';
import type { GenerationError } from '../../../src/generation/api';
import type { Target } from '../../../src/protocol/targets';
import { startOpenAiStub, toDeltas, type OpenAiStub } from '../../support/openai-stub-server';
import {
  closeAllEditors,
  documentFor,
  fixtureImage,
  ProgressRecorder,
  requestId,
  useOpenAiStub,
  useSettings,
  within,
} from './helpers';

const REPLY =
  'Here is the page you asked for.\n\n```html\n' +
  '<!DOCTYPE html><html><head><title>Login</title><style>body{margin:0;font-family:sans-serif}.card{padding:16px}</style></head>' +
  '<body><div class="card"><h1>Sign in</h1><button>Go</button></div></body></html>\n```\n\nThat should do it.';

/** REPLY reduced to its code block and formatted by prettier, as the document must hold it. */
const EXPECTED =
  '<!DOCTYPE html>\n<html>\n  <head>\n    <title>Login</title>\n    <style>\n      body {\n        margin: 0;\n' +
  '        font-family: sans-serif;\n      }\n      .card {\n        padding: 16px;\n      }\n    </style>\n  </head>\n' +
  '  <body>\n    <div class="card">\n      <h1>Sign in</h1>\n      <button>Go</button>\n    </div>\n  </body>\n</html>\n';

const REFINED_REPLY =
  '```html\n<!DOCTYPE html><html><head><title>Login</title></head><body><h1 style="color:red">Sign in</h1></body></html>\n```';
const REFINED =
  '<!DOCTYPE html>\n<html>\n  <head>\n    <title>Login</title>\n  </head>\n  <body>\n' +
  '    <h1 style="color: red">Sign in</h1>\n  </body>\n</html>\n';

const KEY = 'sk-design-to-code-test';

async function failureOf(promise: Promise<unknown>): Promise<GenerationError> {
  try {
    await promise;
  } catch (error) {
    assert.ok(
      error instanceof Error && error.name === 'GenerationError',
      `expected a GenerationError, got ${String(error)}`,
    );
    return error as GenerationError;
  }
  assert.fail('expected the generation to fail');
}

describe('generation against an OpenAI-compatible endpoint', function () {
  this.timeout(60_000);
  let extension: DesignToCodeExtension;
  let stub: OpenAiStub;
  let restore: () => Promise<void>;

  /** Generates from the fixture image, expecting it to fail: the GenerationError. */
  const failedGeneration = (target: Target) =>
    failureOf(
      extension.api.generate(
        { requestId: requestId(), image: fixtureImage(), target, instruction: '' },
        () => undefined,
      ),
    );

  before(async () => {
    ({ extension, stub, restore } = await useOpenAiStub(
      { deltas: toDeltas(REPLY), apiKey: KEY, models: ['stub-vl'] },
      { insertMode: 'new-document', previewAutoOpen: false, maxTokens: 321, temperature: 0 },
    ));
    await extension.apiKeys.set(stub.url, KEY);
  });

  after(async () => {
    await extension.apiKeys.set(stub.url, '');
    await restore();
    await closeAllEditors();
  });

  beforeEach(() => {
    stub.behaviour = { deltas: toDeltas(REPLY), apiKey: KEY, models: ['stub-vl'] };
    stub.requests.length = 0;
  });

  it('streams into a new document that ends up holding exactly the extracted, formatted code', async () => {
    const progress = new ProgressRecorder();
    const result = await extension.api.generate(
      {
        requestId: requestId(),
        image: fixtureImage(),
        target: 'html',
        instruction: 'keep it simple',
      },
      progress.listener,
    );
    assert.equal(result.outcome, 'done');
    assert.deepEqual(result.warnings, []);
    assert.equal(result.tokens, toDeltas(REPLY).length);
    const document = documentFor(result.documentUri);
    assert.equal(document.languageId, 'html');
    assert.equal(document.getText(), EXPECTED);
    assert.ok(
      progress.events.some((event) => event.stage === 'generating'),
      'no generating progress',
    );

    const sent = stub.requests[0]!.body as {
      model: string;
      stream: boolean;
      max_tokens: number;
      messages: {
        role: string;
        content: { type: string; image_url?: { url: string }; text?: string }[];
      }[];
    };
    assert.equal(stub.requests[0]!.headers.authorization, `Bearer ${KEY}`);
    assert.equal(sent.model, 'stub-vl');
    assert.equal(sent.stream, true);
    assert.equal(sent.max_tokens, 321);
    const parts = sent.messages[1]!.content;
    assert.match(parts[0]!.image_url!.url, /^data:image\/png;base64,iVBORw0KGgo/);
    assert.match(parts[1]!.text!, /Also: keep it simple$/);
    assert.equal(extension.api.history()[0]!.id, result.historyId);
  });

  it('undoes the whole generation in one step', async () => {
    const result = await extension.api.generate(
      { requestId: requestId(), image: fixtureImage(), target: 'html', instruction: '' },
      () => undefined,
    );
    const document = documentFor(result.documentUri);
    assert.equal(document.getText(), EXPECTED);
    await vscode.window.showTextDocument(document);
    await vscode.commands.executeCommand('undo');
    assert.equal(document.getText(), '');
    await vscode.commands.executeCommand('redo');
    assert.equal(document.getText(), EXPECTED);
  });

  it('inserts at the cursor of the active editor, also as one undo step', async () => {
    const document = await vscode.workspace.openTextDocument({
      language: 'html',
      content: '<main>\n</main>\n',
    });
    const editor = await vscode.window.showTextDocument(document);
    const cursor = new vscode.Position(1, 0);
    editor.selection = new vscode.Selection(cursor, cursor);
    const result = await extension.api.generate(
      {
        requestId: requestId(),
        image: fixtureImage(),
        target: 'html',
        instruction: '',
        insertMode: 'cursor',
      },
      () => undefined,
    );
    assert.equal(result.documentUri, document.uri.toString());
    assert.equal(document.getText(), `<main>\n${EXPECTED}</main>\n`);
    await vscode.window.showTextDocument(document);
    await vscode.commands.executeCommand('undo');
    assert.equal(document.getText(), '<main>\n</main>\n');
  });

  it('refines: continues the conversation and updates the same document in place', async () => {
    const first = await extension.api.generate(
      { requestId: requestId(), image: fixtureImage(), target: 'html', instruction: '' },
      () => undefined,
    );
    stub.behaviour.deltas = toDeltas(REFINED_REPLY);
    stub.requests.length = 0;
    const refined = await extension.api.refine(
      { requestId: requestId(), instruction: 'make the title red', historyId: first.historyId },
      () => undefined,
    );
    assert.equal(refined.outcome, 'done');
    assert.equal(refined.documentUri, first.documentUri);
    assert.equal(documentFor(first.documentUri).getText(), REFINED);
    const messages = (stub.requests[0]!.body as { messages: { role: string; content: unknown }[] })
      .messages;
    assert.deepEqual(
      messages.map((message) => message.role),
      ['system', 'user', 'assistant', 'user'],
    );
    // The model's reply word for word (not the formatted code), so a server's cache of the
    // conversation covers everything but the new request.
    assert.equal(messages[2]!.content, REPLY);
    assert.match(messages[3]!.content as string, /make the title red/);

    // A second refinement extends the first one's conversation exactly.
    stub.behaviour.deltas = toDeltas(REFINED_REPLY);
    stub.requests.length = 0;
    await extension.api.refine(
      { requestId: requestId(), instruction: 'and the button blue', historyId: first.historyId },
      () => undefined,
    );
    const again = (stub.requests[0]!.body as { messages: { role: string; content: unknown }[] })
      .messages;
    assert.deepEqual(again.slice(0, 4), messages);
    assert.deepEqual(again.slice(4, 5), [{ role: 'assistant', content: REFINED_REPLY }]);
    assert.equal(again.length, 6);
    assert.match(again[5]!.content as string, /and the button blue/);
  });

  it('refines code the user edited from the code as it stands', async () => {
    const first = await extension.api.generate(
      { requestId: requestId(), image: fixtureImage(), target: 'html', instruction: '' },
      () => undefined,
    );
    const document = documentFor(first.documentUri);
    const edit = new vscode.WorkspaceEdit();
    edit.insert(document.uri, document.positionAt(document.getText().indexOf('<h1>')), '<p>hi</p>');
    assert.ok(await vscode.workspace.applyEdit(edit));
    const edited = document.getText();
    stub.behaviour.deltas = toDeltas(REFINED_REPLY);
    stub.requests.length = 0;
    await extension.api.refine(
      { requestId: requestId(), instruction: 'make the title red', historyId: first.historyId },
      () => undefined,
    );
    const messages = (stub.requests[0]!.body as { messages: { role: string; content: unknown }[] })
      .messages;
    assert.deepEqual(
      messages.map((message) => message.role),
      ['system', 'user', 'assistant', 'user'],
    );
    assert.equal(messages[2]!.content, '```html\n' + edited.trimEnd() + '\n```');
    assert.match(messages[2]!.content as string, /<p>hi<\/p><h1>/);
  });

  it('checks and wraps Draw.io XML into a .drawio document', async () => {
    stub.behaviour.deltas = toDeltas(
      'Diagram:\n```xml\n<mxGraphModel><root><mxCell id="0"/><mxCell id="1" parent="0"/>' +
        '<mxCell id="a" value="A" vertex="1" parent="1"><mxGeometry x="0" y="0" width="80" height="40" as="geometry"/></mxCell>' +
        '<mxCell id="e" edge="1" parent="1" source="a" target="zz"><mxGeometry relative="1" as="geometry"/></mxCell>' +
        '</root></mxGraphModel>\n```',
    );
    const result = await extension.api.generate(
      {
        requestId: requestId(),
        image: fixtureImage('diagram_450x230.png'),
        target: 'drawio',
        instruction: '',
      },
      () => undefined,
    );
    const text = documentFor(result.documentUri).getText();
    assert.match(
      text,
      /^<mxfile host="design-to-code">\n  <diagram id="[^"]+" name="Page-1">\n    <mxGraphModel>/,
    );
    assert.ok(text.endsWith('</mxGraphModel>\n  </diagram>\n</mxfile>\n'));
    assert.deepEqual(result.warnings, ['Draw.io: edge "e" has target "zz", which does not exist.']);
  });

  it('stops: the stream ends, the server sees the client leave, the text so far stays', async () => {
    stub.behaviour.deltas = toDeltas(REPLY, 2);
    stub.behaviour.delayMs = 40;
    const progress = new ProgressRecorder();
    const id = requestId();
    const running = extension.api.generate(
      { requestId: id, image: fixtureImage(), target: 'html', instruction: '' },
      progress.listener,
    );
    await within(
      progress.when((event) => event.stage === 'generating' && event.tokens >= 25),
      20_000,
      'streamed tokens',
    );
    assert.equal(extension.api.running, true);
    await assert.rejects(
      extension.api.generate(
        { requestId: requestId(), image: fixtureImage(), target: 'html', instruction: '' },
        () => undefined,
      ),
      /already running/,
    );
    extension.api.stop(id);
    const result = await within(running, 5_000, 'the stopped generation');
    assert.equal(result.outcome, 'stopped');
    await within(stub.clientClosedEarly, 5_000, 'the stub to see the client leave');
    assert.equal(extension.api.running, false);
    const text = documentFor(result.documentUri).getText();
    assert.ok(text.length > 0, 'the text streamed before Stop is gone');
    assert.ok(text.length < EXPECTED.length);
    assert.ok(
      REPLY.includes(text),
      `the document holds text that was not streamed: ${JSON.stringify(text)}`,
    );
  });

  it('a wrong API key says so and offers to set the key', async () => {
    await extension.apiKeys.set(stub.url, 'sk-wrong');
    try {
      const failure = await failedGeneration('html');
      assert.equal(failure.code, 'unauthorized');
      assert.match(failure.message, /rejected the API key \(HTTP 401\)/);
      assert.deepEqual(failure.actions, ['setApiKey', 'openSettings']);
    } finally {
      await extension.apiKeys.set(stub.url, KEY);
    }
  });

  it('an unknown model says so and offers to choose one', async () => {
    const restoreModel = await useSettings({ model: 'no-such-model' });
    try {
      const failure = await failedGeneration('react');
      assert.equal(failure.code, 'modelNotFound');
      assert.match(failure.message, /does not serve the model "no-such-model"/);
      assert.deepEqual(failure.actions, ['chooseModel', 'openSettings']);
    } finally {
      await restoreModel();
    }
  });

  it('an endpoint that does not answer says so and offers the settings', async () => {
    const closed = await startOpenAiStub({ deltas: [] });
    const url = closed.url;
    await closed.close();
    const restoreEndpoint = await useSettings({ endpoint: url });
    try {
      const failure = await failedGeneration('html');
      assert.equal(failure.code, 'unreachable');
      assert.match(
        failure.message,
        new RegExp(`Cannot reach ${url.replace(/[.]/g, '\\.')} \\(ECONNREFUSED\\)`),
      );
      assert.deepEqual(failure.actions, ['openSettings']);
    } finally {
      await restoreEndpoint();
    }
  });

  it('a server error while loading (503) says to try again', async () => {
    stub.behaviour.status = 503;
    const failure = await failedGeneration('html');
    assert.equal(failure.code, 'loading');
    assert.match(failure.message, /still loading the model \(HTTP 503\)/);
  });
});
