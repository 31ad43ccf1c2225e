/**
 * `node dist/cli.js serve` as the extension runs it: JSON lines on stdout (progress, one ready
 * line), the token from a file or the environment, a model pulled from a (loopback) hub, and a
 * clean exit on SIGTERM or when its stdin closes.
 */
import { strict as assert } from 'node:assert';
import { execFileSync, spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { callJson } from './support/chat-client';
import { startLoopbackHub, type LoopbackHub } from './support/loopback-hub';
import { goldenCases, openAiMessages, TINY_MODEL_DIR } from './support/tiny-model';
import { SafetensorsCheckpoint } from '../../server/engine/checkpoint/safetensors';
import { buildVariant } from '../../server/engine/onnx/build-graphs';
import { buildKey } from '../../server/engine/runtime/build-cache';
import { isAlive } from '../harness/processes';
import { requireWebGpu } from '../engine/support/webgpu';

const ROOT = join(__dirname, '..', '..');
const CLI = join(ROOT, 'dist', 'cli.js');
const TEXT_ONLY = goldenCases().find((chat) => chat.name === 'text_only')!;

interface Served {
  child: ChildProcessWithoutNullStreams;
  /** Every stdout line, parsed (each must be JSON). */
  events: Record<string, any>[];
  stderr: string[];
  /** The first event matching `predicate` (waits for it), or a failure if the process ends first. */
  waitFor(predicate: (event: Record<string, any>) => boolean): Promise<Record<string, any>>;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

// fp32 so the served text can be compared with the transformers golden (int4 is the default);
// a later --precision in `args` wins.
function serve(args: string[], env: NodeJS.ProcessEnv): Served {
  const child = spawn(
    process.execPath,
    [CLI, 'serve', '--device', 'cpu', '--precision', 'fp32', ...args],
    {
      cwd: ROOT,
      env: { ...process.env, ...env },
      stdio: ['pipe', 'pipe', 'pipe'],
    },
  );
  const events: Served['events'] = [];
  const stderr: string[] = [];
  const waiters = new Set<() => void>();
  createInterface({ input: child.stdout }).on('line', (line) => {
    events.push(JSON.parse(line));
    for (const wake of waiters) wake();
  });
  createInterface({ input: child.stderr }).on('line', (line) => stderr.push(line));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.on('exit', (code, signal) => {
      for (const wake of waiters) wake();
      resolve({ code, signal });
    }),
  );
  const waitFor: Served['waitFor'] = (predicate) =>
    new Promise((resolve, reject) => {
      const check = () => {
        const found = events.find(predicate);
        if (found) {
          waiters.delete(check);
          resolve(found);
        } else if (child.exitCode !== null || child.signalCode !== null) {
          waiters.delete(check);
          reject(new Error(`serve exited first; stderr:\n${stderr.join('\n')}`));
        }
      };
      waiters.add(check);
      check();
    });
  return { child, events, stderr, waitFor, exited };
}

/** The first stderr line matching `pattern` (polled), or a failure if the process ends first. */
async function waitForLog(served: Served, pattern: RegExp): Promise<RegExpMatchArray> {
  for (;;) {
    for (const line of served.stderr) {
      const match = line.match(pattern);
      if (match) return match;
    }
    if (served.child.exitCode !== null || served.child.signalCode !== null) {
      throw new Error(`serve exited first; stderr:\n${served.stderr.join('\n')}`);
    }
    await sleep(20);
  }
}

/** The lock file a build of the tiny model (fp32, CPU graphs) takes in `cacheDir`. */
function tinyBuildLock(cacheDir: string): string {
  const variant = buildVariant('fp32', 'cpu');
  const key = buildKey(
    readFileSync(join(TINY_MODEL_DIR, 'config.json'), 'utf8'),
    SafetensorsCheckpoint.open(TINY_MODEL_DIR).shards,
    variant,
  );
  return join(cacheDir, `.lock-${variant}-${key}`);
}

describe('design-to-code serve (the built CLI)', function () {
  this.timeout(120_000);
  let work: string;
  let env: NodeJS.ProcessEnv;
  const running: Served[] = [];
  const start = (args: string[], extraEnv: NodeJS.ProcessEnv = {}) => {
    const served = serve(args, { ...env, ...extraEnv });
    running.push(served);
    return served;
  };

  before(async () => {
    if (!existsSync(CLI))
      execFileSync(process.execPath, ['esbuild.mjs'], { cwd: ROOT, stdio: 'ignore' });
    work = await mkdtemp(join(tmpdir(), 'd2c-serve-cli-'));
    env = {
      DESIGN_TO_CODE_CACHE: join(work, 'onnx'),
      DESIGN_TO_CODE_MODELS: join(work, 'models'),
      DESIGN_TO_CODE_TOKEN: '',
      HF_ENDPOINT: 'http://127.0.0.1:9', // nothing listens there: no test may reach a real hub
    };
  });
  afterEach(() => {
    for (const served of running.splice(0))
      if (served.child.exitCode === null) served.child.kill('SIGKILL');
  });
  after(async () => {
    await rm(work, { recursive: true, force: true });
  });

  it('prints progress, then one ready line; uses the token file; exits on SIGTERM', async () => {
    const tokenFile = join(work, 'token');
    const served = start(['--model', TINY_MODEL_DIR, '--token-file', tokenFile]);
    const ready = await served.waitFor((event) => event.event === 'ready');
    assert.equal(ready.device, 'cpu');
    assert.equal(ready.model, 'model');
    assert.ok(Number.isInteger(ready.port) && ready.port > 0);
    assert.equal(ready.token, undefined, 'a token kept in a file is not printed');
    assert.ok(served.events.slice(0, -1).every((event) => event.event === 'progress'));
    assert.ok(served.events.some((event) => event.stage === 'load'));
    assert.ok(
      !served.events.some((event) => event.item === 'warm-up'),
      'the CPU provider compiles nothing: no warm-up',
    );

    const token = readFileSync(tokenFile, 'utf8').trim();
    assert.ok(token.length >= 32);
    assert.equal(statSync(tokenFile).mode & 0o777, 0o600, 'the token file is private');
    const handle = { url: `http://127.0.0.1:${ready.port}`, token };
    assert.equal((await callJson(handle, '/health')).body.status, 'ready');
    assert.equal((await callJson(handle, '/health', undefined, { token: 'nope' })).status, 401);

    served.child.kill('SIGTERM');
    assert.deepEqual(await served.exited, { code: 0, signal: null });
    assert.equal(served.events.filter((event) => event.event === 'ready').length, 1);
    assert.ok(served.stderr.some((line) => line.includes('shutting down: SIGTERM')));
  });

  it('exits when its stdin closes (the parent died), and prints a generated token once', async () => {
    const served = start(['--model', TINY_MODEL_DIR]);
    const ready = await served.waitFor((event) => event.event === 'ready');
    assert.equal(typeof ready.token, 'string');
    const reply = await callJson(
      { url: `http://127.0.0.1:${ready.port}`, token: ready.token },
      '/v1/chat/completions',
      { messages: openAiMessages(TEXT_ONLY), temperature: 0, max_tokens: 24 },
    );
    assert.equal(reply.body.choices[0].message.content, TEXT_ONLY.greedy_text);
    served.child.stdin.end();
    assert.deepEqual(await served.exited, { code: 0, signal: null });
  });

  it('saves the conversation it holds when it stops; the next start goes on from it', async () => {
    const ask = async (served: Served, messages: unknown[]) => {
      const ready = await served.waitFor((event) => event.event === 'ready');
      const reply = await callJson(
        { url: `http://127.0.0.1:${ready.port}`, token: ready.token },
        '/v1/chat/completions',
        { messages, temperature: 0, max_tokens: 24 },
      );
      return reply.body.choices[0].message.content as string;
    };
    // Longer than the shortest conversation worth a file.
    const request = 'A login page: a header, a form with two fields, a footer. '.repeat(8);
    const first = [{ role: 'user', content: request }];
    const served = start(['--model', TINY_MODEL_DIR]);
    const answer = await ask(served, first);
    served.child.kill('SIGTERM');
    assert.deepEqual(await served.exited, { code: 0, signal: null });
    const saved = readdirSync(env.DESIGN_TO_CODE_CACHE!, { recursive: true }).filter((name) =>
      /conversations-cpu[\\/][0-9a-f]+\.kv$/.test(String(name)),
    );
    assert.equal(saved.length, 1);

    const again = start(['--model', TINY_MODEL_DIR]);
    const followUp = [
      ...first,
      { role: 'assistant', content: answer },
      { role: 'user', content: 'Shorter, please.' },
    ];
    await ask(again, followUp);
    const [, prompt, reused] = await waitForLog(
      again,
      /generation \w+: (\d+) prompt \((\d+) reused\)/,
    );
    assert.ok(Number(reused) > 0 && Number(reused) < Number(prompt), `${reused} of ${prompt}`);
    again.child.stdin.end();
    assert.deepEqual(await again.exited, { code: 0, signal: null });
  });

  it('on WebGPU, warms the shaders up before ready, then answers as the reference does', async function () {
    await requireWebGpu(this);
    const served = start(['--model', TINY_MODEL_DIR, '--device', 'webgpu']);
    const ready = await served.waitFor((event) => event.event === 'ready');
    assert.equal(ready.device, 'webgpu');
    const warm = served.events.findIndex((event) => event.item === 'warm-up');
    assert.ok(warm >= 0 && warm < served.events.indexOf(ready), 'a warm-up progress line first');
    const [, ms] = await waitForLog(served, /warmed up the webgpu shaders in (\d+) ms/);
    console.log(`      warm-up took ${ms} ms (software Vulkan)`);
    const reply = await callJson(
      { url: `http://127.0.0.1:${ready.port}`, token: ready.token },
      '/v1/chat/completions',
      { messages: openAiMessages(TEXT_ONLY), temperature: 0, max_tokens: 24 },
    );
    assert.equal(reply.body.choices[0].message.content, TEXT_ONLY.greedy_text);
  });

  it('explains a bad option and exits 2 without printing events', async () => {
    for (const [args, message] of [
      [['--device', 'quantum'], /--device must be one of auto, cpu/],
      [['--port', 'eighty'], /--port must be an integer/],
      [['--precision', 'int3'], /--precision must be one of/],
      [['--nonsense'], /Unknown option '--nonsense'/],
    ] as const) {
      const served = start([...args]);
      assert.deepEqual(await served.exited, { code: 2, signal: null });
      assert.deepEqual(served.events, []);
      assert.match(served.stderr.join('\n'), message);
    }
  });

  it('refuses --offline for a model that is not cached: one error line, exit 1', async () => {
    const served = start(['--model', 'acme/not-cached', '--offline']);
    assert.deepEqual(await served.exited, { code: 1, signal: null });
    assert.equal(served.events.length, 1);
    assert.equal(served.events[0].event, 'error');
    assert.equal(served.events[0].code, 'not_in_cache');
    assert.match(served.events[0].message, /models pull acme\/not-cached/);
  });

  describe('while the ONNX model builds', () => {
    // Another process (this test) holds the build's lock, so the build child waits in its
    // blocking lock loop for as long as the test wants: the server must stay responsive anyway.
    let cacheDir: string;
    let lock: string;
    beforeEach(() => {
      cacheDir = join(work, 'onnx-fresh');
      mkdirSync(cacheDir, { recursive: true });
      lock = tinyBuildLock(cacheDir);
      writeFileSync(lock, String(process.pid));
    });
    afterEach(async () => {
      await rm(cacheDir, { recursive: true, force: true });
    });

    const startBuilding = async () => {
      const served = start(['--model', TINY_MODEL_DIR], {
        DESIGN_TO_CODE_CACHE: cacheDir,
        DESIGN_TO_CODE_TOKEN: 'token-from-env',
      });
      const builder = Number(
        (await waitForLog(served, /building or finding the ONNX model in process (\d+)/))[1],
      );
      assert.notEqual(builder, served.child.pid, 'the build runs in its own process');
      assert.ok(isAlive(builder));
      return { served, builder };
    };

    it('answers /health and stops at once on SIGTERM, killing the build process', async () => {
      const { served, builder } = await startBuilding();
      const port = Number(
        (await waitForLog(served, /listening on http:\/\/127\.0\.0\.1:(\d+)/))[1],
      );
      const health = await callJson(
        { url: `http://127.0.0.1:${port}`, token: 'token-from-env' },
        '/health',
      );
      assert.equal(health.body.status, 'loading');
      assert.ok(isAlive(builder), 'the build is still waiting');

      served.child.kill('SIGTERM');
      assert.deepEqual(await served.exited, { code: 0, signal: null });
      assert.ok(!isAlive(builder), 'the build process is gone with the server');
      assert.ok(!served.events.some((event) => event.event === 'ready' || event.event === 'error'));
      assert.deepEqual(readdirSync(cacheDir), [lock.slice(cacheDir.length + 1)], 'no build left');
    });

    it('killed outright (SIGKILL), leaves no build process behind', async () => {
      const { served, builder } = await startBuilding();
      served.child.kill('SIGKILL');
      assert.deepEqual(await served.exited, { code: null, signal: 'SIGKILL' });
      // The build's watchdog notices that its parent is gone (the test's timeout bounds this).
      while (isAlive(builder)) await sleep(50);
      assert.deepEqual(readdirSync(cacheDir), [lock.slice(cacheDir.length + 1)], 'no build left');
    });

    it('stops when its stdin closes, killing the build; a later start builds and serves', async () => {
      const { served, builder } = await startBuilding();
      served.child.stdin.end();
      assert.deepEqual(await served.exited, { code: 0, signal: null });
      assert.ok(!isAlive(builder), 'no orphaned build process');
      assert.ok(served.stderr.some((line) => line.includes('stdin closed')));
      assert.deepEqual(readdirSync(cacheDir), [lock.slice(cacheDir.length + 1)], 'no build left');

      await rm(lock); // the other builder is done (and built nothing)
      const again = start(['--model', TINY_MODEL_DIR], { DESIGN_TO_CODE_CACHE: cacheDir });
      const ready = await again.waitFor((event) => event.event === 'ready');
      const builds = again.events.filter((event) => event.stage === 'build');
      assert.ok(builds.length > 0, "the build child's progress is relayed");
      assert.ok(
        again.events.indexOf(builds.at(-1)!) <
          again.events.findIndex((event) => event.stage === 'load'),
        'the model is built before it loads',
      );
      const reply = await callJson(
        { url: `http://127.0.0.1:${ready.port}`, token: ready.token },
        '/v1/chat/completions',
        { messages: openAiMessages(TEXT_ONLY), temperature: 0, max_tokens: 24 },
      );
      assert.equal(reply.body.choices[0].message.content, TEXT_ONLY.greedy_text);
      again.child.kill('SIGTERM');
      assert.deepEqual(await again.exited, { code: 0, signal: null });
      const builtDirs = readdirSync(cacheDir).filter((entry) => !entry.startsWith('.'));
      assert.equal(builtDirs.length, 1);
      assert.ok(existsSync(join(cacheDir, builtDirs[0], 'build.json')));
    });
  });

  describe('with a hub id', () => {
    let hub: LoopbackHub;
    beforeEach(async () => {
      const files = readdirSync(TINY_MODEL_DIR).map((path) => ({
        path,
        content: readFileSync(join(TINY_MODEL_DIR, path)),
        lfs: path.endsWith('.safetensors') || path === 'tokenizer.json',
      }));
      hub = await startLoopbackHub('acme/tiny-vl', files);
    });
    afterEach(async () => {
      await hub.close();
      await rm(join(work, 'models'), { recursive: true, force: true });
    });

    it('stops on SIGTERM in the middle of a download, then resumes where it stopped', async () => {
      const stalledAt = 3_000_000;
      hub.misbehave.stallAfter = { path: 'model.safetensors', bytes: stalledAt };
      const environment = { HF_ENDPOINT: hub.url, DESIGN_TO_CODE_TOKEN: 'token-from-env' };
      const first = start(['--model', 'acme/tiny-vl'], environment);
      await first.waitFor(
        (event) => event.file === 'model.safetensors' && event.bytes >= stalledAt,
      );
      first.child.kill('SIGTERM');
      assert.deepEqual(await first.exited, { code: 0, signal: null });
      assert.ok(!first.events.some((event) => event.event === 'ready' || event.event === 'error'));
      const dir = join(work, 'models', 'acme--tiny-vl');
      assert.ok(!existsSync(join(dir, 'model.safetensors')), 'no complete-looking file');

      const second = start(['--model', 'acme/tiny-vl'], environment);
      await second.waitFor((event) => event.event === 'ready');
      const resumed = second.events.filter((event) => event.file === 'model.safetensors');
      assert.ok(
        resumed[0].bytes >= stalledAt,
        'the second run starts from the bytes already on disk',
      );
      assert.ok(
        hub.log.some((line) => line.includes('/resolve/') && line.includes(`bytes=${stalledAt}-`)),
      );
      second.child.kill('SIGTERM');
      assert.equal((await second.exited).code, 0);
    });

    it('downloads the model with progress lines, serves it, and serves it --offline afterwards', async () => {
      const served = start(['--model', 'acme/tiny-vl'], {
        HF_ENDPOINT: hub.url,
        DESIGN_TO_CODE_TOKEN: 'token-from-env',
      });
      const ready = await served.waitFor((event) => event.event === 'ready');
      assert.equal(ready.model, 'acme/tiny-vl');
      assert.equal(ready.token, undefined, 'a token from the environment is not printed');
      const downloads = served.events.filter((event) => event.stage === 'download');
      const weights = downloads.filter((event) => event.file === 'model.safetensors');
      assert.ok(weights.length > 0);
      assert.equal(weights.at(-1)!.bytes, weights.at(-1)!.total);
      const last = downloads.at(-1)!;
      assert.equal(last.overallBytes, last.overallTotal);
      assert.ok(
        served.events.indexOf(last) < served.events.findIndex((event) => event.stage === 'load'),
        'the download finishes before the model loads',
      );
      const handle = { url: `http://127.0.0.1:${ready.port}`, token: 'token-from-env' };
      const reply = await callJson(handle, '/v1/chat/completions', {
        messages: openAiMessages(TEXT_ONLY),
        temperature: 0,
        max_tokens: 24,
      });
      assert.equal(reply.body.choices[0].message.content, TEXT_ONLY.greedy_text);
      served.child.kill('SIGTERM');
      assert.equal((await served.exited).code, 0);

      const requests = hub.log.length;
      const offline = start(['--model', 'acme/tiny-vl', '--offline'], {
        HF_ENDPOINT: hub.url,
        DESIGN_TO_CODE_TOKEN: 'token-from-env',
      });
      const again = await offline.waitFor((event) => event.event === 'ready');
      assert.equal(again.model, 'acme/tiny-vl');
      assert.ok(!offline.events.some((event) => event.stage === 'download'));
      assert.equal(hub.log.length, requests, '--offline never calls the hub');
      offline.child.kill('SIGTERM');
      assert.equal((await offline.exited).code, 0);
    });
  });
});
