/**
 * Reads one JSON file of a checkpoint, turning "missing" and "unparsable" into EngineErrors that
 * name the file, so a half-downloaded checkpoint says exactly what is wrong.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { EngineError } from '../errors';

export type Json = Record<string, unknown>;

/** Returns the parsed object, or undefined when the file does not exist and `optional` is set. */
export function readCheckpointJson(
  modelDir: string,
  name: string,
  optional: true,
): Json | undefined;
export function readCheckpointJson(modelDir: string, name: string, optional?: false): Json;
export function readCheckpointJson(
  modelDir: string,
  name: string,
  optional = false,
): Json | undefined {
  const text = readCheckpointText(modelDir, name, optional as true);
  if (text === undefined) return undefined;
  const path = join(modelDir, name);
  try {
    const value: unknown = JSON.parse(text);
    if (!value || typeof value !== 'object' || Array.isArray(value)) {
      throw new Error('expected a JSON object');
    }
    return value as Json;
  } catch (error) {
    throw new EngineError('bad_checkpoint', `Cannot parse ${path}: ${(error as Error).message}`, {
      cause: error,
    });
  }
}

export function readCheckpointText(
  modelDir: string,
  name: string,
  optional: true,
): string | undefined;
export function readCheckpointText(modelDir: string, name: string, optional?: false): string;
export function readCheckpointText(
  modelDir: string,
  name: string,
  optional = false,
): string | undefined {
  const path = join(modelDir, name);
  try {
    return readFileSync(path, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') {
      if (optional) return undefined;
      throw new EngineError(
        'model_not_found',
        `${name} is missing from ${modelDir}: download the complete Hugging Face checkpoint (it must contain ${name})`,
        { cause: error },
      );
    }
    throw new EngineError('bad_checkpoint', `Cannot read ${path}: ${(error as Error).message}`, {
      cause: error,
    });
  }
}
