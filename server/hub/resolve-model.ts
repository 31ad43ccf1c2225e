/**
 * Turns `--model` into a checkpoint directory: a local directory is used as it is; a hub id is
 * pulled into the cache (or, with --offline, taken from the cache only).
 */
import { stat } from 'node:fs/promises';
import { basename, resolve } from 'node:path';
import { HubError } from './errors';
import { completeCacheDir } from './model-cache';
import { isHubId } from './model-ref';
import { pullModel, type DownloadProgress } from './pull-model';
import type { HubConnection } from './remote-files';

export interface ResolveOptions {
  root: string;
  offline: boolean;
  connection: HubConnection;
  signal?: AbortSignal;
  onProgress?: (progress: DownloadProgress) => void;
  /** Told when the hub could not be reached and the cached copy is used instead. */
  onWarning?: (message: string) => void;
  /** Told when another process is downloading the same model and this one waits for it. */
  onWaiting?: (message: string) => void;
}

export interface ResolvedModel {
  dir: string;
  /** Reported as the model name: the hub id, or the directory's name. */
  name: string;
  source: 'directory' | 'cache' | 'hub';
}

export async function resolveModel(ref: string, options: ResolveOptions): Promise<ResolvedModel> {
  if (await isDirectory(ref))
    return { dir: resolve(ref), name: basename(resolve(ref)), source: 'directory' };
  if (!isHubId(ref)) {
    throw new HubError(
      'bad_model_ref',
      `--model "${ref}" is neither an existing directory nor a hub id like Qwen/Qwen3-VL-2B-Instruct`,
    );
  }
  const cached = await completeCacheDir(ref, options.root);
  if (options.offline) {
    if (cached) return { dir: cached, name: ref, source: 'cache' };
    throw new HubError(
      'not_in_cache',
      `${ref} is not in the model cache (${options.root}) and --offline forbids downloading it. ` +
        `Run "design-to-code models pull ${ref}" while online, or pass a local directory.`,
    );
  }
  try {
    const pulled = await pullModel(ref, options);
    return { dir: pulled.dir, name: ref, source: 'hub' };
  } catch (error) {
    // Only a cache that is still complete will do: a failed update may have replaced files.
    const stillCached = cached && (await completeCacheDir(ref, options.root));
    if (
      stillCached &&
      error instanceof HubError &&
      error.code === 'network' &&
      !options.signal?.aborted
    ) {
      options.onWarning?.(`${error.message}; using the cached copy in ${stillCached}`);
      return { dir: stillCached, name: ref, source: 'cache' };
    }
    throw error;
  }
}

async function isDirectory(path: string): Promise<boolean> {
  try {
    return (await stat(path)).isDirectory();
  } catch {
    return false;
  }
}
