/**
 * What `--model` names: a local checkpoint directory (used as it is) or a Hugging Face hub id
 * (`org/name`), which maps to one folder in the model cache.
 */
import { homedir } from 'node:os';
import { join } from 'node:path';

export const DEFAULT_MODEL_ID = 'Qwen/Qwen3-VL-2B-Instruct';

/** Hub ids are `org/name` with the hub's own character set (letters, digits, `-`, `_`, `.`). */
const HUB_ID = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,95}\/[A-Za-z0-9][A-Za-z0-9_.-]{0,95}$/;

export function isHubId(value: string): boolean {
  return HUB_ID.test(value) && !value.includes('..');
}

/** The models cache root: $DESIGN_TO_CODE_MODELS or ~/.cache/design-to-code/models. */
export function defaultModelsRoot(env: NodeJS.ProcessEnv = process.env): string {
  return env.DESIGN_TO_CODE_MODELS || join(homedir(), '.cache', 'design-to-code', 'models');
}

/** `Qwen/Qwen3-VL-2B-Instruct` -> `<root>/Qwen--Qwen3-VL-2B-Instruct` (one flat folder per id). */
export function cacheDirFor(modelId: string, root: string): string {
  if (!isHubId(modelId)) throw new TypeError(`"${modelId}" is not a hub id of the form org/name`);
  return join(root, modelId.replace('/', '--'));
}

/** The inverse of cacheDirFor for a folder name, or undefined if the name is not one of ours. */
export function modelIdFromCacheName(name: string): string | undefined {
  const index = name.indexOf('--');
  if (index <= 0) return undefined;
  const id = `${name.slice(0, index)}/${name.slice(index + 2)}`;
  return isHubId(id) ? id : undefined;
}
