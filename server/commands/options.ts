/** Option checks shared by the commands that load a model (generate, serve, build). */
import type { DeviceRequest, Precision } from '../engine/contracts';
import { ORT_WEB_PACKAGES } from '../engine/runtime/ort-web-in-node';

const DEVICES: readonly DeviceRequest[] = ['auto', 'cpu', 'webgpu', 'cuda', 'dml', 'coreml'];
const PRECISIONS: readonly Precision[] = ['fp32', 'fp16', 'int4'];

/** A bad command line: the command prints the message and its usage, and exits 2. */
export class UsageError extends Error {}

export function parseDevice(value: string): DeviceRequest {
  if (!(DEVICES as readonly string[]).includes(value)) {
    throw new UsageError(`--device must be one of ${DEVICES.join(', ')}, not "${value}"`);
  }
  return value as DeviceRequest;
}

/** How --graph-capture reads in every command's help, after its column of option names. */
export function graphCaptureHelp(indent: number): string {
  const pad = ' '.repeat(indent);
  return `WebGPU only: the text decoder on onnxruntime-web, each step replayed
${pad}from one recording (WebGPU graph capture), its KV cache fixed at N positions
${pad}(prompt and answer together); needs ${ORT_WEB_PACKAGES}`;
}

/** --graph-capture N: the cache capacity of a graph-capture build, or undefined without it. */
export function parseGraphCapture(value: string | undefined): { capacity: number } | undefined {
  if (value === undefined) return undefined;
  const capacity = Number(value);
  if (!Number.isInteger(capacity) || capacity < 16 || capacity > 262_144) {
    throw new UsageError(
      `--graph-capture must be the cache's positions, a whole number from 16 to 262144, not "${value}"`,
    );
  }
  return { capacity };
}

export function parsePrecision(value: string): Precision;
export function parsePrecision(value: string | undefined): Precision | undefined;
export function parsePrecision(value: string | undefined): Precision | undefined {
  if (value !== undefined && !(PRECISIONS as readonly string[]).includes(value)) {
    throw new UsageError(`--precision must be one of ${PRECISIONS.join(', ')}, not "${value}"`);
  }
  return value as Precision | undefined;
}
