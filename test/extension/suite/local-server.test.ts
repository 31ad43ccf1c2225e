// The local server's life, with the real `dist/cli.js serve` and the tiny golden model:
// started on first use with the ready handshake, restarted and reported after it is killed
// (also in the middle of a generation), stopped on request with no restart.
import assert from 'node:assert/strict';
import * as vscode from 'vscode';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { constants, getPriority } from 'node:os';
import path from 'node:path';
import type { DesignToCodeExtension } from '../../../src/extension';
import { encodeImage } from '../../../src/panel/images';
import { PanelController } from '../../../src/panel/panelController';
import type { HostToPanel } from '../../../src/protocol/panel';
import type { ServerState } from '../../../src/server/supervisor';
import { isAlive } from '../../harness/processes';
import { solidPng } from '../../support/png';
import {
  closeAllEditors,
  extensionApi,
  fixtureImage,
  fixturesDir,
  ProgressRecorder,
  repoRoot,
  requestId,
  useSettings,
  within,
} from './helpers';

function nextState(
  extension: DesignToCodeExtension,
  wanted: ServerState,
  ms: number,
): Promise<void> {
  if (extension.server.state === wanted) return Promise.resolve();
  return within(
    new Promise<void>((resolve) => {
      const subscription = extension.server.onDidChangeState((state) => {
        if (state !== wanted) return;
        subscription.dispose();
        resolve();
      });
    }),
    ms,
    `server state "${wanted}" (now "${extension.server.state}")`,
  );
}

describe('the local server', function () {
  this.timeout(240_000);
  let extension: DesignToCodeExtension;
  let restore: () => Promise<void>;

  before(async function () {
    if (!existsSync(path.join(repoRoot(), 'dist', 'cli.js'))) {
      throw new Error('dist/cli.js is missing: run npm run build before the extension tests');
    }
    extension = await extensionApi();
    await extension.server.stop();
    restore = await useSettings({
      backend: 'local',
      model: path.join(fixturesDir(), 'qwen3vl-tiny', 'model'),
      serverPath: '',
      device: 'cpu',
      maxTokens: 8,
      temperature: 0,
      insertMode: 'new-document',
      previewAutoOpen: false,
    });
  });

  after(async () => {
    await extension.server.stop();
    await restore();
    await closeAllEditors();
  });

  it('is not started by activation, then starts on first use and generates', async () => {
    assert.equal(extension.server.state, 'stopped');
    assert.equal(extension.server.pid, undefined);
    const progress = new ProgressRecorder();
    const result = await extension.api.generate(
      {
        requestId: requestId(),
        image: fixtureImage('small_40x30.png'),
        target: 'html',
        instruction: '',
      },
      progress.listener,
    );
    assert.equal(result.outcome, 'done');
    assert.ok(result.tokens > 0 && result.tokens <= 8, `tokens: ${result.tokens}`);
    assert.equal(extension.server.state, 'ready');
    assert.equal(progress.events[0]!.stage, 'startingServer');
    // The server said how far it read, before the first token: the tiny CPU build's tower has a
    // stage per block, then the prompt comes in chunks of 128 tokens (its ~250: two).
    const reading = progress.events.flatMap((event) =>
      event.stage === 'readingImage' && event.percent !== undefined
        ? [`${event.reading} ${Math.round(event.percent)}`]
        : [],
    );
    assert.deepEqual(reading.slice(0, 4), ['image 25', 'image 50', 'image 75', 'image 100']);
    const prompt = reading.slice(4);
    assert.ok(prompt.length >= 2, `prompt progress: ${prompt.join(', ')}`);
    assert.ok(prompt.every((entry) => entry.startsWith('prompt ')));
    assert.equal(prompt.at(-1), 'prompt 100');
    const firstToken = progress.events.findIndex((event) => event.stage === 'generating');
    assert.ok(
      progress.events.slice(firstToken).every((event) => event.stage === 'generating'),
      'nothing read after the first token',
    );
    assert.ok(extension.server.info?.endpoint.startsWith('http://127.0.0.1:'));
    assert.ok(extension.server.info?.device);
  });

  /** The server's prompt tokens so far, and how many of them came from its KV cache. */
  async function promptCounts(): Promise<{ prompt: number; reused: number }> {
    const info = extension.server.info!;
    const response = await fetch(info.endpoint.replace(/\/v1$/, '/metrics'), {
      headers: { authorization: `Bearer ${info.token}` },
    });
    const lines = (await response.text()).split('\n');
    const metric = (name: string) =>
      Number(lines.find((l) => l.startsWith(`${name} `))?.split(' ')[1] ?? 0);
    return {
      prompt: metric('d2c_prompt_tokens_total'),
      reused: metric('d2c_prompt_tokens_reused_total'),
    };
  }

  it('runs below normal priority, every thread of it, so that the editor comes first', () => {
    const pid = extension.server.pid!;
    assert.equal(getPriority(pid), constants.priority.PRIORITY_BELOW_NORMAL);
    if (process.platform !== 'linux') return;
    // Linux keeps a nice value per thread: those running the model must have it too.
    const threads = readdirSync(`/proc/${pid}/task`);
    const nice = threads.map((tid) => {
      const stat = readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8');
      return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[16]);
    });
    assert.ok(threads.length > 4, `${threads.length} threads`);
    assert.deepEqual(new Set(nice), new Set([constants.priority.PRIORITY_BELOW_NORMAL]));
  });

  it('reads a chosen image ahead, then its instruction: Generate then reads only its last token', async () => {
    const image = fixtureImage('mockup_320x256.png');
    const ask = { kind: 'generate', image, target: 'html' } as const;
    const progress: string[] = [];
    const read = await extension.api.readAhead({ ...ask, instruction: '' }, undefined, (p) =>
      progress.push(`${p.stage} ${p.done}/${p.total}`),
    );
    assert.equal(read, true);
    // How far the server read it (a new image here: the tower's four stages, then the prompt).
    assert.deepEqual(progress.slice(0, 4), ['image 1/4', 'image 2/4', 'image 3/4', 'image 4/4']);
    assert.match(progress.at(-1)!, /^prompt (\d+)\/\1$/);
    const pasted = await promptCounts();
    assert.equal(await extension.api.readAhead({ ...ask, instruction: 'use a dark theme' }), true);
    const typed = await promptCounts();
    // The instruction's read-ahead kept the image's tokens and read only the task's text.
    assert.ok(typed.reused - pasted.reused > (typed.prompt - pasted.prompt) / 2);
    const result = await extension.api.generate(
      { requestId: requestId(), image, target: 'html', instruction: 'use a dark theme' },
      () => undefined,
    );
    assert.equal(result.outcome, 'done');
    const after = await promptCounts();
    assert.equal(after.reused - typed.reused, after.prompt - typed.prompt - 1);
  });

  it('reads nothing ahead when the readAhead setting is off', async () => {
    const restoreReadAhead = await useSettings({ readAhead: false });
    try {
      const before = await promptCounts();
      const read = await extension.api.readAhead({
        kind: 'generate',
        image: fixtureImage('diagram_450x230.png'),
        target: 'drawio',
        instruction: '',
      });
      assert.equal(read, false);
      assert.deepEqual(await promptCounts(), before);
    } finally {
      await restoreReadAhead();
    }
  });

  it('reads a refinement ahead while it is typed: Refine then reads only its last token', async () => {
    const counts = promptCounts;
    await extension.api.readAhead({ kind: 'refine', instruction: 'make the title red' });
    const before = await counts();
    const refined = await extension.api.refine(
      { requestId: requestId(), instruction: 'make the title red' },
      () => undefined,
    );
    assert.equal(refined.outcome, 'done');
    const after = await counts();
    assert.equal(after.reused - before.reused, after.prompt - before.prompt - 1);
  });

  it('is restarted and reported after it is killed', async () => {
    await extension.api.generate(
      {
        requestId: requestId(),
        image: fixtureImage('small_40x30.png'),
        target: 'html',
        instruction: '',
      },
      () => undefined,
    );
    const before = extension.server.pid!;
    const restarts = extension.server.restarts;
    const crash = new Promise<{ willRestart: boolean; signal: string | null }>((resolve) => {
      const subscription = extension.server.onDidCrash((report) => {
        subscription.dispose();
        resolve(report);
      });
    });
    process.kill(before, 'SIGKILL');
    const report = await within(crash, 10_000, 'the crash report');
    assert.equal(report.signal, 'SIGKILL');
    assert.equal(report.willRestart, true);
    await nextState(extension, 'ready', 120_000);
    assert.equal(extension.server.restarts, restarts + 1);
    assert.notEqual(extension.server.pid, before);
    const again = await extension.api.generate(
      {
        requestId: requestId(),
        image: fixtureImage('small_40x30.png'),
        target: 'html',
        instruction: '',
      },
      () => undefined,
    );
    assert.equal(again.outcome, 'done');
  });

  it('fails the request in flight with a clear message when the server dies mid-generation', async () => {
    await extension.server.ensureStarted();
    const restoreTokens = await useSettings({ maxTokens: 4000 });
    try {
      const progress = new ProgressRecorder();
      const running = extension.api.generate(
        {
          requestId: requestId(),
          image: fixtureImage('mockup_320x256.png'),
          target: 'html',
          instruction: '',
        },
        progress.listener,
      );
      await within(
        progress.when((event) => event.stage === 'readingImage'),
        30_000,
        'the request to be sent',
      );
      process.kill(extension.server.pid!, 'SIGKILL');
      await assert.rejects(running, (error: Error & { code?: string; actions?: string[] }) => {
        assert.equal(error.name, 'GenerationError');
        assert.equal(error.code, 'serverCrashed');
        assert.match(error.message, /stopped unexpectedly while generating/);
        assert.deepEqual(error.actions, ['showLog', 'restartServer']);
        return true;
      });
      await nextState(extension, 'ready', 120_000);
    } finally {
      await restoreTokens();
    }
  });

  it('stops on request, ends its process and does not come back', async () => {
    await extension.server.ensureStarted();
    const pid = extension.server.pid!;
    await extension.server.stop();
    assert.equal(extension.server.state, 'stopped');
    assert.equal(isAlive(pid), false);
    await new Promise((resolve) => setTimeout(resolve, 1500));
    assert.equal(extension.server.state, 'stopped');
    assert.equal(extension.server.pid, undefined);
  });

  it('is stopped when the backend switches to a remote endpoint', async () => {
    await extension.server.ensureStarted();
    const pid = extension.server.pid!;
    const stopped = nextState(extension, 'stopped', 15_000);
    const restoreBackend = await useSettings({ backend: 'openai-compatible' });
    try {
      await stopped;
      assert.equal(isAlive(pid), false);
    } finally {
      await restoreBackend();
    }
  });
  it('reports a start that fails once, and does not restart it as if it had crashed', async () => {
    await extension.server.stop();
    const restarts = extension.server.restarts;
    let crashes = 0;
    const subscription = extension.server.onDidCrash(() => crashes++);
    const restoreModel = await useSettings({ model: path.join(fixturesDir(), 'no-such-model') });
    try {
      await assert.rejects(extension.server.ensureStarted());
      assert.equal(extension.server.state, 'failed');
      await new Promise((resolve) => setTimeout(resolve, 1500));
      assert.equal(extension.server.state, 'failed');
      assert.equal(crashes, 0);
      assert.equal(extension.server.restarts, restarts);
    } finally {
      subscription.dispose();
      await restoreModel();
      await extension.server.stop();
    }
  });

  it('reads a large image at the image detail set: low keeps 640 visual tokens where standard keeps 1,000', async () => {
    const bytes = new Uint8Array(solidPng(1280, 800, [30, 90, 160]));
    const image = { bytes, mimeType: 'image/png', name: 'wide_1280x800.png' };
    /** The prompt tokens of reading the image ahead on a server started with `imageDetail`. */
    const promptTokens = async (imageDetail: string) => {
      const restoreDetail = await useSettings({ imageDetail });
      try {
        await extension.server.ensureStarted();
        const before = await promptCounts();
        await extension.api.readAhead({ kind: 'generate', image, target: 'html', instruction: '' });
        return (await promptCounts()).prompt - before.prompt;
      } finally {
        await extension.server.stop();
        await restoreDetail();
      }
    };
    const [standard, low] = [await promptTokens('standard'), await promptTokens('low')];
    // 1280x800 in patches of 16 merged 2x2: 40 x 25 tokens; at most 640 * 32 * 32 pixels, 32 x 20.
    assert.equal(standard - low, 1000 - 640);
  });

  it('unloads the model once unused for unloadAfterMinutes, not while it is held, and loads it again for a refinement', async () => {
    const restoreIdle = await useSettings({ unloadAfterMinutes: 0.02 }); // 1.2 s
    try {
      const hold = extension.server.hold(); // as a generation or a read-ahead does
      await extension.server.ensureStarted();
      // The conversation the server holds when it stops, and saves for the next start.
      await extension.api.readAhead({ kind: 'refine', instruction: 'make the title blue' });
      const pid = extension.server.pid!;
      await new Promise((resolve) => setTimeout(resolve, 2500));
      assert.equal(extension.server.state, 'ready', 'unloaded while held');
      hold.dispose();
      await nextState(extension, 'stopped', 10_000);
      assert.equal(isAlive(pid), false);
      assert.equal(extension.server.unloadedIdle, true, 'the status bar would not say why');
      // Not a Stop Server: typing a refinement starts it again and reads the conversation ahead
      // (as choosing an image does, tested below), going on from the one it saved: only the
      // last token is read.
      await extension.api.readAhead({ kind: 'refine', instruction: 'make the title blue' });
      assert.equal(extension.server.state, 'ready');
      const counts = await promptCounts();
      assert.ok(counts.prompt > 0, 'the refinement was read ahead');
      assert.equal(counts.reused, counts.prompt - 1, 'the saved conversation was taken up');
    } finally {
      await extension.server.stop();
      await restoreIdle();
    }
  });

  it('loads a model unloaded while idle again when the user turns to the panel', async () => {
    const restoreIdle = await useSettings({ unloadAfterMinutes: 0.02 }); // 1.2 s
    try {
      // Stopped for another reason (here, by the test), it is not started by a look at the panel.
      await extension.server.stop();
      extension.api.expectUse();
      await new Promise((resolve) => setTimeout(resolve, 1000));
      assert.equal(extension.server.state, 'stopped', 'started without being unloaded');
      // The panel open, then an editor in front of it.
      await vscode.commands.executeCommand('designToCode.openPanel');
      await vscode.window.showTextDocument(await vscode.workspace.openTextDocument());
      await extension.server.ensureStarted();
      await nextState(extension, 'stopped', 10_000);
      assert.equal(extension.server.unloadedIdle, true);
      await vscode.commands.executeCommand('designToCode.openPanel'); // the panel comes forward
      await nextState(extension, 'ready', 60_000);
    } finally {
      await extension.server.stop();
      await restoreIdle();
      await closeAllEditors();
    }
  });

  it('has the panel stop saying Generate starts at once when the server stops', async () => {
    const posted: HostToPanel[] = [];
    const deps = { api: extension.api, settings: extension.settings };
    const controller = new PanelController(deps, (message) => posted.push(message), extension.log);
    const readAheadStates = () =>
      posted.flatMap((message) => (message.type === 'readAhead' ? [message.state] : []));
    try {
      await controller.handle({ type: 'imageChosen', image: encodeImage(fixtureImage()) });
      await controller.handle({
        type: 'readAhead',
        next: { kind: 'generate', target: 'html', instruction: '' },
      });
      assert.equal(readAheadStates().at(-1), 'read');
      await extension.server.stop(); // as an idle unload or a crash would
      assert.equal(readAheadStates().at(-1), 'idle');
    } finally {
      controller.dispose();
    }
  });

  it('starts when an image is chosen and reads it ahead: Generate then reads only its last token', async () => {
    assert.equal(extension.server.state, 'stopped');
    const image = fixtureImage('mockup_320x256.png');
    const ask = { image, target: 'react', instruction: '' } as const;
    await extension.api.readAhead({ kind: 'generate', ...ask });
    assert.equal(extension.server.state, 'ready');
    const before = await promptCounts();
    assert.ok(before.prompt > 0, 'the image was read ahead');
    const result = await extension.api.generate(
      { requestId: requestId(), ...ask },
      () => undefined,
    );
    assert.equal(result.outcome, 'done');
    const after = await promptCounts();
    assert.equal(after.reused - before.reused, after.prompt - before.prompt - 1);
  });

  it('does not start ahead after Stop Server, nor to download a model', async () => {
    await vscode.commands.executeCommand('designToCode.stopServer');
    const ask = {
      kind: 'generate',
      image: fixtureImage(),
      target: 'html',
      instruction: '',
    } as const;
    await extension.api.readAhead(ask);
    assert.equal(extension.server.state, 'stopped', 'the user stopped it');
    assert.equal(extension.server.pid, undefined);
    // A hub id that is not in the model cache: starting ahead never downloads.
    await extension.server.ensureStarted(); // a request clears the user's stop
    await extension.server.stop();
    // A stand-in hub (the server's HF_ENDPOINT, inherited from this process) counts requests.
    let hubRequests = 0;
    const hub = http.createServer((_, response) => {
      hubRequests++;
      response.writeHead(404).end();
    });
    await new Promise<void>((resolve) => hub.listen(0, '127.0.0.1', resolve));
    const previousEndpoint = process.env.HF_ENDPOINT;
    process.env.HF_ENDPOINT = `http://127.0.0.1:${(hub.address() as AddressInfo).port}`;
    const restoreModel = await useSettings({ model: 'Qwen/Not-Downloaded-VL-2B' });
    try {
      let crashes = 0;
      const subscription = extension.server.onDidCrash(() => crashes++);
      await extension.api.readAhead(ask);
      await new Promise((resolve) => setTimeout(resolve, 1000));
      subscription.dispose();
      assert.equal(hubRequests, 0, 'the hub was asked for the model');
      assert.equal(extension.server.state, 'stopped');
      assert.equal(extension.server.pid, undefined);
      assert.equal(crashes, 0);
    } finally {
      await restoreModel();
      if (previousEndpoint === undefined) delete process.env.HF_ENDPOINT;
      else process.env.HF_ENDPOINT = previousEndpoint;
      hub.close();
    }
  });
});
