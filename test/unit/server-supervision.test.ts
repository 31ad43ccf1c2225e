import { strict as assert } from 'node:assert';
import { chmodSync, mkdtempSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { RestartPolicy } from '../../src/server/restartPolicy';
import {
  resolveServerCommand,
  serveArguments,
  ServerNotFound,
} from '../../src/server/resolveServer';
import { DEFAULTS } from '../../src/settings/schema';
import {
  LineSplitter,
  parseServerLine,
  progressPercent,
  toProgressStage,
} from '../../src/server/serverEvents';

describe('server stdout events', () => {
  it('parses the ready line, progress lines and the error line; ignores the rest', () => {
    assert.deepEqual(
      parseServerLine(
        '{"event":"ready","port":4123,"device":"cpu","model":"tiny","host":"127.0.0.1"}',
      ),
      {
        event: 'ready',
        port: 4123,
        device: 'cpu',
        model: 'tiny',
      },
    );
    assert.equal(parseServerLine('{"event":"ready","port":0}'), undefined);
    assert.equal(parseServerLine('listening'), undefined);
    assert.equal(parseServerLine('{"event":"progress","stage":"nope"}'), undefined);
    assert.deepEqual(parseServerLine('{"event":"error","code":"hub","message":"offline"}'), {
      event: 'error',
      code: 'hub',
      message: 'offline',
    });
    const download = parseServerLine(
      '{"event":"progress","stage":"download","file":"model.safetensors","bytes":5,"total":10,"overallBytes":30,"overallTotal":120}',
    );
    assert.ok(download && download.event === 'progress');
    assert.equal(progressPercent(download), 25);
    assert.deepEqual(toProgressStage(download), {
      stage: 'downloading',
      file: 'model.safetensors',
      percent: 25,
    });
    const build = parseServerLine(
      '{"event":"progress","stage":"build","item":"vision","done":1,"total":4}',
    );
    assert.ok(build && build.event === 'progress');
    assert.deepEqual(toProgressStage(build), { stage: 'building', item: 'vision', percent: 25 });
  });

  it('splits a byte stream into lines across chunks', () => {
    const splitter = new LineSplitter();
    assert.deepEqual(splitter.push('{"a":'), []);
    assert.deepEqual(splitter.push('1}\r\nnext\npart'), ['{"a":1}', 'next']);
    assert.deepEqual(splitter.flush(), ['part']);
  });
});

describe('restart policy', () => {
  it('restarts with growing delays, then gives up after 5 crashes within 3 minutes', () => {
    const policy = new RestartPolicy();
    const delays = [0, 1000, 2000, 3000].map((t) => policy.onCrash(t));
    assert.deepEqual(delays, [
      { restart: true, delayMs: 500 },
      { restart: true, delayMs: 1000 },
      { restart: true, delayMs: 2000 },
      { restart: true, delayMs: 4000 },
    ]);
    assert.deepEqual(policy.onCrash(4000), { restart: false, crashes: 5 });
  });

  it('forgets crashes older than the window, and after a deliberate start', () => {
    const policy = new RestartPolicy();
    for (let i = 0; i < 4; i++) policy.onCrash(i);
    assert.deepEqual(policy.onCrash(3 * 60_000 + 10), { restart: true, delayMs: 500 });
    for (let i = 0; i < 3; i++) policy.onCrash(3 * 60_000 + 20 + i);
    policy.reset();
    assert.deepEqual(policy.onCrash(3 * 60_000 + 100), { restart: true, delayMs: 500 });
  });
});

describe('the arguments the local server runs with', () => {
  const tail = (settings: Partial<typeof DEFAULTS>, offline = false) =>
    serveArguments({ ...DEFAULTS, ...settings }, offline).slice(7);

  it('serves the model on a free loopback port, passing only what is not automatic', () => {
    assert.deepEqual(serveArguments(DEFAULTS, false), [
      ...['serve', '--model', DEFAULTS.model, '--port', '0', '--host', '127.0.0.1'],
    ]);
    assert.deepEqual(tail({ device: 'cuda', precision: 'fp16' }, true), [
      ...['--offline', '--device', 'cuda', '--precision', 'fp16'],
    ]);
  });

  it('caps the image pixels as the image detail says (standard: the server default)', () => {
    assert.deepEqual(tail({ imageDetail: 'standard' }), []);
    assert.deepEqual(tail({ imageDetail: 'low' }), ['--max-image-pixels', '655360']);
    assert.deepEqual(tail({ imageDetail: 'high' }), ['--max-image-pixels', 'none']);
  });
});

describe('resolving the server to run', () => {
  const root = mkdtempSync(join(tmpdir(), 'd2c-resolve-'));
  mkdirSync(join(root, 'dist'));
  writeFileSync(join(root, 'dist', 'cli.js'), '');
  const binary = join(root, 'server-bin');
  writeFileSync(binary, '#!/bin/sh\n');
  chmodSync(binary, 0o755);
  const inputs = { settingPath: '', extensionPath: root, execPath: '/usr/bin/node' };

  it('runs the bundled cli.js on the editor Node with ELECTRON_RUN_AS_NODE', () => {
    assert.deepEqual(resolveServerCommand(inputs, ['serve']), {
      command: '/usr/bin/node',
      args: [join(root, 'dist', 'cli.js'), 'serve'],
      env: { ELECTRON_RUN_AS_NODE: '1' },
      source: 'bundled',
      path: join(root, 'dist', 'cli.js'),
    });
  });

  it('prefers the environment over the setting, and runs executables directly', () => {
    const fromEnv = resolveServerCommand(
      { ...inputs, environmentOverride: binary, settingPath: 'nope.js' },
      ['serve'],
    );
    assert.equal(fromEnv.source, 'environment');
    assert.equal(fromEnv.command, binary);
    assert.deepEqual(fromEnv.env, {});
    const fromSetting = resolveServerCommand(
      { ...inputs, settingPath: 'dist/cli.js', workspaceFolder: root },
      [],
    );
    assert.equal(fromSetting.source, 'setting');
    assert.equal(fromSetting.path, join(root, 'dist', 'cli.js'));
  });

  it('says which source points to a missing or non-executable file', () => {
    assert.throws(
      () => resolveServerCommand({ ...inputs, settingPath: '/no/such/server.js' }, []),
      (error: Error) =>
        error instanceof ServerNotFound &&
        /setting designToCode.serverPath points to \/no\/such/.test(error.message),
    );
    const plain = join(root, 'not-executable');
    writeFileSync(plain, '');
    assert.throws(
      () => resolveServerCommand({ ...inputs, environmentOverride: plain }, []),
      /not executable/,
    );
  });
});
