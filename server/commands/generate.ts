/**
 * `design-to-code generate`: runs the model once on a chat read from a JSON file and prints the
 * reply (streamed), or with --json one object with the ids, text, grids and timings.
 */
import {
  UsageError,
  graphCaptureHelp,
  parseDevice,
  parseGraphCapture,
  parsePrecision,
} from './options';
import { readFile } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import type {
  ChatMessage,
  ChatPart,
  DeviceRequest,
  EngineLoadOptions,
  Precision,
} from '../engine/contracts';
import { loadEngine } from '../engine/engine';
import { MAX_IMAGE_PIXELS_HELP, parseMaxImagePixels } from './max-image-pixels';
import { EngineError, isEngineError } from '../engine/errors';

const USAGE = `Usage: design-to-code generate --model DIR --messages FILE.json [options]

Runs a local Qwen3-VL checkpoint once on a chat and prints the reply.

Options:
  --model DIR             Hugging Face Qwen3-VL checkpoint directory (required)
  --messages FILE.json    chat messages: [{"role":"user","content":[{"type":"image","path":"a.png"},
                          {"type":"text","text":"..."}]}]; image paths are relative to the file
  --max-new-tokens N      stop after N new tokens (default: what fits the context)
  --greedy                always pick the most likely token (default: the checkpoint's settings)
  --device D              auto, cpu, webgpu, cuda, dml or coreml (default: cpu)
  --precision P           fp32, fp16 or int4 (default: int4)
  --graph-capture N       ${graphCaptureHelp(26)}
  --max-image-pixels N    ${MAX_IMAGE_PIXELS_HELP}
  --json                  print one JSON object with token ids, text, image grids and timings
  -h, --help              show this help`;

interface GenerateArgs {
  modelDir: string;
  messagesFile: string;
  maxNewTokens?: number;
  greedy: boolean;
  device: DeviceRequest;
  precision: Precision;
  graphCapture?: { capacity: number };
  maxImagePixels?: number;
  json: boolean;
}

export async function runGenerate(argv: string[]): Promise<number> {
  let args: GenerateArgs | undefined;
  try {
    args = parseGenerateArgs(argv);
  } catch (error) {
    if (
      error instanceof UsageError ||
      (error as { code?: string }).code?.startsWith('ERR_PARSE_ARGS')
    ) {
      process.stderr.write(`design-to-code generate: ${(error as Error).message}\n\n${USAGE}\n`);
      return 2;
    }
    throw error;
  }
  if (!args) {
    process.stdout.write(USAGE + '\n');
    return 0;
  }
  try {
    await generate(args);
    return 0;
  } catch (error) {
    if (isEngineError(error)) {
      process.stderr.write(`design-to-code generate: ${error.message} [${error.code}]\n`);
      return 1;
    }
    throw error;
  }
}

/** Returns undefined for --help. */
export function parseGenerateArgs(argv: string[]): GenerateArgs | undefined {
  const { values, positionals } = parseArgs({
    args: argv,
    strict: true,
    allowPositionals: true,
    options: {
      model: { type: 'string' },
      messages: { type: 'string' },
      'max-new-tokens': { type: 'string' },
      greedy: { type: 'boolean', default: false },
      device: { type: 'string', default: 'cpu' },
      precision: { type: 'string', default: 'int4' },
      'graph-capture': { type: 'string' },
      'max-image-pixels': { type: 'string' },
      json: { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  if (values.help) return undefined;
  if (positionals.length > 0) throw new UsageError(`unexpected argument "${positionals[0]}"`);
  if (!values.model) throw new UsageError('--model DIR is required');
  if (!values.messages) throw new UsageError('--messages FILE.json is required');
  const device = parseDevice(values.device);
  const precision = parsePrecision(values.precision);
  const graphCapture = parseGraphCapture(values['graph-capture']);
  let maxNewTokens: number | undefined;
  if (values['max-new-tokens'] !== undefined) {
    maxNewTokens = Number(values['max-new-tokens']);
    if (!Number.isInteger(maxNewTokens) || maxNewTokens < 1) {
      throw new UsageError(
        `--max-new-tokens must be a positive integer, got "${values['max-new-tokens']}"`,
      );
    }
  }
  const maxImagePixels = parseMaxImagePixels(values['max-image-pixels']);
  return {
    modelDir: resolve(values.model),
    messagesFile: resolve(values.messages),
    maxNewTokens,
    greedy: values.greedy ?? false,
    device,
    precision,
    graphCapture,
    maxImagePixels,
    json: values.json ?? false,
  };
}

async function generate(args: GenerateArgs): Promise<void> {
  const messages = await readMessagesFile(args.messagesFile);
  const options: EngineLoadOptions = {
    modelDir: args.modelDir,
    device: args.device,
    precision: args.precision,
    graphCapture: args.graphCapture,
    maxImagePixels: args.maxImagePixels,
    // Progress redraws one line, which only makes sense on a terminal.
    onProgress: process.stderr.isTTY
      ? (p) => process.stderr.write(`\r${p.stage} ${p.item}: ${p.done}/${p.total}\x1b[K`)
      : undefined,
    onWarning: (message) => process.stderr.write(`design-to-code generate: warning: ${message}\n`),
  };
  const engine = await loadEngine(options);
  try {
    if (process.stderr.isTTY) process.stderr.write('\r\x1b[K');
    const result = await engine.generate(
      {
        messages,
        maxNewTokens: args.maxNewTokens,
        sampling: args.greedy ? { greedy: true } : undefined,
      },
      { onText: args.json ? undefined : (delta) => process.stdout.write(delta) },
    );
    if (args.json) {
      const output = {
        prompt_token_ids: result.promptTokenIds,
        token_ids: result.tokenIds,
        text: result.text,
        image_grid_thw: result.imageGridThw,
        device: engine.info.device,
        precision: engine.info.precision,
        finish_reason: result.finishReason,
        timings_ms: result.timingsMs,
      };
      process.stdout.write(JSON.stringify(output) + '\n');
    } else {
      process.stdout.write('\n');
    }
  } finally {
    await engine.dispose();
  }
}

interface FilePart {
  type?: unknown;
  text?: unknown;
  path?: unknown;
}

/** Reads the messages file; image parts name files relative to it and become bytes. */
export async function readMessagesFile(file: string): Promise<ChatMessage[]> {
  let raw: unknown;
  try {
    raw = JSON.parse(await readFile(file, 'utf8'));
  } catch (error) {
    const missing = (error as NodeJS.ErrnoException).code === 'ENOENT';
    throw new EngineError(
      'bad_request',
      missing
        ? `Messages file ${file} does not exist`
        : `Messages file ${file} is not valid JSON: ${(error as Error).message}`,
    );
  }
  if (!Array.isArray(raw)) {
    throw new EngineError('bad_request', `${file}: expected a JSON array of chat messages`);
  }
  const base = dirname(file);
  const messages: ChatMessage[] = [];
  for (const [index, message] of raw.entries()) {
    const where = `${file}: message ${index}`;
    if (!message || typeof message !== 'object') {
      throw new EngineError('bad_request', `${where} must be an object with role and content`);
    }
    const { role, content } = message as { role?: unknown; content?: unknown };
    if (role !== 'system' && role !== 'user' && role !== 'assistant') {
      throw new EngineError(
        'bad_request',
        `${where}: role must be "system", "user" or "assistant"`,
      );
    }
    if (typeof content === 'string') {
      messages.push({ role, content });
      continue;
    }
    if (!Array.isArray(content)) {
      throw new EngineError('bad_request', `${where}: content must be a string or a list of parts`);
    }
    const parts: ChatPart[] = [];
    for (const part of content as FilePart[]) {
      if (part?.type === 'text' && typeof part.text === 'string') {
        parts.push({ type: 'text', text: part.text });
      } else if (part?.type === 'image' && typeof part.path === 'string') {
        const path = resolve(base, part.path);
        try {
          parts.push({ type: 'image', image: new Uint8Array(await readFile(path)) });
        } catch (error) {
          throw new EngineError(
            'bad_request',
            `${where}: cannot read image ${path}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`,
          );
        }
      } else {
        throw new EngineError(
          'bad_request',
          `${where}: each part must be {"type":"text","text":...} or {"type":"image","path":...}`,
        );
      }
    }
    messages.push({ role, content: parts });
  }
  return messages;
}
