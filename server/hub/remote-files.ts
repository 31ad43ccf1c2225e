/**
 * What the hub holds for a model: the commit that `main` (or a given revision) points at, and
 * the files a checkpoint needs at that commit, each with its size and content hash.
 */
import { listFiles, modelInfo } from '@huggingface/hub';
import { HubError } from './errors';

export interface HubConnection {
  /** Hub base URL; default $HF_ENDPOINT or https://huggingface.co. */
  hubUrl?: string;
  /** For gated or private repositories; default $HF_TOKEN. */
  accessToken?: string;
  fetch?: typeof fetch;
}

export interface RemoteFile {
  path: string;
  size: number;
  /** sha256 of the content for LFS files (the LFS oid), else undefined. */
  sha256?: string;
  /** Git blob sha1 for files stored in git itself (small JSON, templates). */
  gitBlobSha1?: string;
}

export interface RemoteModel {
  modelId: string;
  commit: string;
  files: RemoteFile[];
}

/** A checkpoint is weights, configs, tokenizer and chat template; docs and images stay behind. */
const CHECKPOINT_FILE = /^[^/]+\.(json|safetensors|jinja|txt|model)$/;

export function isCheckpointFile(path: string): boolean {
  return CHECKPOINT_FILE.test(path) && path !== 'LICENSE.txt';
}

export function connectionFromEnv(env: NodeJS.ProcessEnv = process.env): HubConnection {
  return { hubUrl: env.HF_ENDPOINT || undefined, accessToken: env.HF_TOKEN || undefined };
}

export async function describeRemoteModel(
  modelId: string,
  connection: HubConnection,
  revision = 'main',
): Promise<RemoteModel> {
  const common = {
    hubUrl: connection.hubUrl,
    accessToken: connection.accessToken,
    fetch: connection.fetch,
  };
  try {
    const info = await modelInfo({ ...common, name: modelId, revision, additionalFields: ['sha'] });
    const commit = (info as { sha?: string }).sha;
    if (!commit) throw new HubError('not_found', `The hub did not report a commit for ${modelId}`);
    const files: RemoteFile[] = [];
    for await (const entry of listFiles({
      ...common,
      repo: modelId,
      revision: commit,
      recursive: true,
    })) {
      if (entry.type !== 'file' || !isCheckpointFile(entry.path)) continue;
      files.push({
        path: entry.path,
        size: entry.lfs?.size ?? entry.size,
        sha256: entry.lfs?.oid,
        gitBlobSha1: entry.lfs ? undefined : entry.oid,
      });
    }
    if (!files.some((file) => file.path === 'config.json')) {
      throw new HubError('not_found', `${modelId}@${commit} has no config.json: not a checkpoint`);
    }
    return { modelId, commit, files };
  } catch (error) {
    throw toHubError(error, `Could not list ${modelId} on ${connection.hubUrl ?? 'the hub'}`);
  }
}

/** Maps @huggingface/hub's HubApiError (statusCode) and fetch failures to HubError codes. */
export function toHubError(error: unknown, context: string): HubError {
  if (error instanceof HubError) return error;
  const status = (error as { statusCode?: number }).statusCode;
  const detail = error instanceof Error ? error.message : String(error);
  if (status === 401 || status === 403 || status === 404) {
    return new HubError('not_found', `${context}: ${detail} (check the model id and HF_TOKEN)`, {
      cause: error,
    });
  }
  return new HubError(
    'network',
    `${context}: ${detail} (check the connection or HF_ENDPOINT; --offline uses the cache only)`,
    { cause: error },
  );
}
