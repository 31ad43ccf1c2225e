/** Option checks shared by the commands that load a model (generate, serve, build). */
import type { DeviceRequest, Precision } from '../engine/contracts';

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

export function parsePrecision(value: string): Precision;
export function parsePrecision(value: string | undefined): Precision | undefined;
export function parsePrecision(value: string | undefined): Precision | undefined {
  if (value !== undefined && !(PRECISIONS as readonly string[]).includes(value)) {
    throw new UsageError(`--precision must be one of ${PRECISIONS.join(', ')}, not "${value}"`);
  }
  return value as Precision | undefined;
}
