/**
 * `design-to-code serve`: resolves the model (downloading it if needed), loads the engine and
 * serves the OpenAI-compatible API on loopback. stdout carries only JSON event lines for the
 * parent process (progress, then exactly one "ready", or one "error"); logs go to stderr. The
 * server stops on SIGTERM, SIGINT, or when its stdin pipe closes because the parent died.
 */
import {
  UsageError,
  graphCaptureHelp,
  parseDevice,
  parseGraphCapture,
  parsePrecision,
} from './options';
import { randomBytes } from 'node:crypto';
import { fstatSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import type { DeviceRequest, Precision } from '../engine/contracts';
import { loadEngine } from '../engine/engine';
import { needsWarmUp, warmUp } from './warm-up';
import { buildInChild } from './build-in-child';
import { MAX_IMAGE_PIXELS_HELP, parseMaxImagePixels } from './max-image-pixels';
import { isEngineError } from '../engine/errors';
import { HubError } from '../hub/errors';
import { DEFAULT_MODEL_ID, defaultModelsRoot } from '../hub/model-ref';
import { throttleProgress } from '../hub/progress-throttle';
import { connectionFromEnv } from '../hub/remote-files';
import { resolveModel } from '../hub/resolve-model';
import { DEFAULT_LIMITS, InferenceServer } from '../http/inference-server';
import { isLoopbackName } from '../http/request-guard';

const USAGE = `Usage: design-to-code serve [options]

Serves an OpenAI-compatible chat completions API (with images) on loopback.

Options:
  --model DIR|ORG/NAME   checkpoint directory, or hub id (default ${DEFAULT_MODEL_ID})
  --device D             auto, cpu, webgpu, cuda, dml or coreml (default auto)
  --precision P          fp32, fp16 or int4 (default: the engine's)
  --graph-capture N      ${graphCaptureHelp(25)}
  --host H               address to bind (default 127.0.0.1)
  --port N               port, 0 for any free one (default 0)
  --token-file F         bearer token file; created with a new token if missing
                         (else $DESIGN_TO_CODE_TOKEN; else a new token is printed in the ready line)
  --offline              never contact the hub: use the model cache only
  --cache-dir D          models cache (default $DESIGN_TO_CODE_MODELS or ~/.cache/design-to-code/models)
  --max-image-pixels N ${MAX_IMAGE_PIXELS_HELP}
  --max-queue N          requests that may wait while one generates (default ${DEFAULT_LIMITS.maxQueue})
  --request-timeout S    seconds before a request is stopped (default ${DEFAULT_LIMITS.requestTimeoutMs / 1000})
  -h, --help             show this help

stdout: JSON lines {"event":"progress",...}, then {"event":"ready","port":...,"device":...,"model":...}
or {"event":"error","message":...}. Set HF_ENDPOINT / HF_TOKEN to use another hub or a gated model.`;

interface ServeArgs {
  model: string;
  device: DeviceRequest;
  precision?: Precision;
  graphCapture?: { capacity: number };
  maxImagePixels?: number;
  host: string;
  port: number;
  tokenFile?: string;
  offline: boolean;
  cacheDir: string;
  maxQueue: number;
  requestTimeoutMs: number;
}

export async function runServe(argv: string[]): Promise<number> {
  let args: ServeArgs;
  try {
    const parsed = parseServeArgs(argv);
    if (!parsed) {
      process.stdout.write(USAGE + '\n');
      return 0;
    }
    args = parsed;
  } catch (error) {
    process.stderr.write(`design-to-code serve: ${(error as Error).message}\n\n${USAGE}\n`);
    return 2;
  }
  return serve(args);
}

function parseServeArgs(argv: string[]): ServeArgs | undefined {
  let values;
  try {
    ({ values } = parseArgs({
      args: argv,
      strict: true,
      options: {
        model: { type: 'string', default: DEFAULT_MODEL_ID },
        device: { type: 'string', default: 'auto' },
        precision: { type: 'string' },
        'graph-capture': { type: 'string' },
        'max-image-pixels': { type: 'string' },
        host: { type: 'string', default: '127.0.0.1' },
        port: { type: 'string', default: '0' },
        'token-file': { type: 'string' },
        offline: { type: 'boolean', default: false },
        'cache-dir': { type: 'string' },
        'max-queue': { type: 'string', default: String(DEFAULT_LIMITS.maxQueue) },
        'request-timeout': {
          type: 'string',
          default: String(DEFAULT_LIMITS.requestTimeoutMs / 1000),
        },
        help: { type: 'boolean', short: 'h', default: false },
      },
    }));
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
  if (values.help) return undefined;
  const device = parseDevice(values.device);
  const precision = parsePrecision(values.precision);
  const graphCapture = parseGraphCapture(values['graph-capture']);
  const maxImagePixels = parseMaxImagePixels(values['max-image-pixels']);
  return {
    model: values.model,
    device,
    precision,
    graphCapture,
    maxImagePixels,
    host: values.host,
    port: integerOption('--port', values.port, 0, 65535),
    tokenFile: values['token-file'],
    offline: values.offline,
    cacheDir: values['cache-dir'] ?? defaultModelsRoot(),
    maxQueue: integerOption('--max-queue', values['max-queue'], 0, 1000),
    requestTimeoutMs:
      integerOption('--request-timeout', values['request-timeout'], 1, 86400) * 1000,
  };
}

function integerOption(name: string, value: string, min: number, max: number): number {
  const number = Number(value);
  if (!Number.isInteger(number) || number < min || number > max) {
    throw new UsageError(`${name} must be an integer from ${min} to ${max}, not "${value}"`);
  }
  return number;
}

const emit = (event: Record<string, unknown>) => process.stdout.write(JSON.stringify(event) + '\n');
const log = (line: string) => process.stderr.write(`[${new Date().toISOString()}] ${line}\n`);

async function serve(args: ServeArgs): Promise<number> {
  const stopping = new AbortController();
  const stopped = new Promise<string>((resolve) => {
    const stop = (why: string) => {
      if (stopping.signal.aborted) return;
      stopping.abort(new Error(`stopped (${why})`));
      resolve(why);
    };
    process.once('SIGTERM', () => stop('SIGTERM'));
    process.once('SIGINT', () => stop('SIGINT'));
    watchParent(() => stop('stdin closed: the parent process is gone'));
  });

  let server: InferenceServer | undefined;
  try {
    const token = await resolveToken(args.tokenFile);
    const model = await resolveModel(args.model, {
      root: args.cacheDir,
      offline: args.offline,
      connection: connectionFromEnv(),
      signal: stopping.signal,
      onProgress: throttleProgress((progress) =>
        emit({ event: 'progress', stage: 'download', ...progress }),
      ),
      onWarning: (message) => log(`warning: ${message}`),
      onWaiting: log,
    });
    log(`model ${model.name} from ${model.dir} (${model.source})`);
    // The first load builds the ONNX model for minutes, synchronously: in a child process, so
    // that SIGTERM, the stdin watch and /health are still served meanwhile. The load then
    // finds the build in the cache.
    const engine = buildInChild({
      modelDir: model.dir,
      device: args.device,
      precision: args.precision,
      graphCapture: args.graphCapture,
      signal: stopping.signal,
      onProgress: (progress) => emit({ event: 'progress', ...progress }),
      onStart: (pid) => log(`building or finding the ONNX model in process ${pid}`),
    })
      .then(() =>
        loadEngine({
          modelDir: model.dir,
          modelName: model.name,
          device: args.device,
          precision: args.precision,
          graphCapture: args.graphCapture,
          maxImagePixels: args.maxImagePixels,
          // Going back to an earlier generation, and a refinement after a restart (an idle
          // unload, VS Code reopened), go on from the conversation instead of reading it again.
          keepConversations: true,
          onProgress: (progress) => emit({ event: 'progress', ...progress }),
          onWarning: (message) => log(`warning: ${message}`),
        }),
      )
      .then(async (loadedEngine) => {
        if (!needsWarmUp(loadedEngine)) return loadedEngine;
        emit({ event: 'progress', stage: 'load', item: 'warm-up', done: 0, total: 1 });
        try {
          const ms = await warmUp(loadedEngine);
          log(`warmed up the ${loadedEngine.info.device} shaders in ${Math.round(ms)} ms`);
        } catch (error) {
          // Only the first request's speed is at stake: serve anyway, and say why.
          log(`warm-up failed (the first request will be slower): ${(error as Error).message}`);
        }
        return loadedEngine;
      });
    server = new InferenceServer({
      engine,
      modelName: model.name,
      token: token.value,
      extraHosts: isLoopbackName(args.host) ? [] : [args.host],
      limits: { maxQueue: args.maxQueue, requestTimeoutMs: args.requestTimeoutMs },
      log,
    });
    const address = await server.listen(args.port, args.host);
    if (!isLoopbackName(args.host)) {
      log(
        `warning: --host ${args.host} makes the server reachable from other machines (the token still applies)`,
      );
    }
    log(
      `listening on http://${address.family === 'IPv6' ? `[${address.address}]` : address.address}:${address.port}`,
    );
    const loaded = await Promise.race([engine, stopped.then(() => undefined)]);
    if (loaded) {
      const { device, precision, model: name } = loaded.info;
      log(`engine ready: ${name} on ${device} (${precision})`);
      emit({
        event: 'ready',
        port: address.port,
        host: args.host,
        device,
        precision,
        model: name,
        ...(token.generated && !args.tokenFile && { token: token.value }),
      });
    }
    const why = await stopped;
    log(`shutting down: ${why}`);
    await server.close();
    await loaded?.dispose();
    return 0;
  } catch (error) {
    await server?.close().catch(() => undefined);
    if (stopping.signal.aborted) {
      log(`shut down while starting: ${(error as Error).message}`);
      return 0;
    }
    const code = isEngineError(error) || error instanceof HubError ? error.code : 'internal';
    const message = error instanceof Error ? error.message : String(error);
    emit({ event: 'error', code, message });
    log(`error: ${message}`);
    return 1;
  } finally {
    process.stdin.destroy();
    // Native sessions can hold the event loop open: make sure the process really ends.
    setTimeout(() => process.exit(), 3000).unref();
  }
}

/** The token from --token-file (created if missing), then $DESIGN_TO_CODE_TOKEN, else a new one. */
async function resolveToken(
  file: string | undefined,
): Promise<{ value: string; generated: boolean }> {
  if (file) {
    try {
      const value = (await readFile(file, 'utf8')).trim();
      if (!value) throw new Error(`the token file ${file} is empty`);
      return { value, generated: false };
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
      const value = newToken();
      await writeFile(file, value + '\n', { mode: 0o600, flag: 'wx' });
      return { value, generated: true };
    }
  }
  const fromEnv = process.env.DESIGN_TO_CODE_TOKEN?.trim();
  if (fromEnv) return { value: fromEnv, generated: false };
  return { value: newToken(), generated: true };
}

const newToken = () => randomBytes(32).toString('base64url');

/**
 * A parent that spawns the server with a stdin pipe and dies closes that pipe: stop then, so
 * no orphan keeps the model in memory. A terminal or /dev/null stdin is not watched.
 */
function watchParent(onGone: () => void): void {
  let stats;
  try {
    stats = fstatSync(0);
  } catch {
    return;
  }
  if (!stats.isFIFO() && !stats.isSocket()) return;
  process.stdin.on('end', onGone);
  process.stdin.on('close', onGone);
  process.stdin.on('error', onGone);
  process.stdin.resume();
}
