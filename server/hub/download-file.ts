/**
 * Downloads one checkpoint file so that it is either absent or complete and verified: bytes go
 * to `.partial/<file>.<hash>.part` (resumed with a Range request after an interruption), are
 * checked against the hub's size and hash, and only then renamed onto the final name.
 */
import { createHash, type Hash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, open, rename, rm, stat } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { downloadFile } from '@huggingface/hub';
import { HubError } from './errors';
import { toHubError, type HubConnection, type RemoteFile } from './remote-files';

export interface FileDownload {
  modelId: string;
  commit: string;
  file: RemoteFile;
  /** The model's cache folder. */
  destDir: string;
  connection: HubConnection;
  signal?: AbortSignal;
  /** Bytes on disk so far (resumed bytes included) out of file.size. */
  onProgress?: (bytes: number) => void;
}

export const PARTIAL_DIR = '.partial';

/** Where the unfinished bytes of a file live; keyed by hash so a changed file never resumes. */
export function partialPathFor(destDir: string, file: RemoteFile): string {
  const key = (file.sha256 ?? file.gitBlobSha1 ?? 'unknown').slice(0, 16);
  return join(destDir, PARTIAL_DIR, `${file.path}.${key}.part`);
}

export async function downloadVerifiedFile(job: FileDownload): Promise<void> {
  const { file, destDir } = job;
  const partial = partialPathFor(destDir, file);
  await mkdir(dirname(partial), { recursive: true });
  let offset = await sizeOf(partial);
  if (offset > file.size) {
    await rm(partial, { force: true });
    offset = 0;
  }
  const hash = startHash(file);
  if (offset > 0) await hashExisting(partial, hash);
  job.onProgress?.(offset);
  if (offset < file.size) await appendRemoteBytes(job, partial, offset, hash);

  const written = await sizeOf(partial);
  const digest = hash.digest('hex');
  const expected = file.sha256 ?? file.gitBlobSha1;
  if (written !== file.size || (expected !== undefined && digest !== expected)) {
    await rm(partial, { force: true });
    throw new HubError(
      'checksum_mismatch',
      `${job.modelId}/${file.path}: downloaded ${written} bytes with ${file.sha256 ? 'sha256' : 'git sha1'} ${digest}, ` +
        `but the hub lists ${file.size} bytes with ${expected}. The partial file was deleted; run the download again.`,
    );
  }
  const dest = join(destDir, file.path);
  await mkdir(dirname(dest), { recursive: true });
  await rename(partial, dest);
}

/** LFS files are checked by sha256; files kept in git by their git blob sha1. */
function startHash(file: RemoteFile): Hash {
  if (file.sha256 || !file.gitBlobSha1) return createHash('sha256');
  return createHash('sha1').update(`blob ${file.size}\0`);
}

async function hashExisting(path: string, hash: Hash): Promise<void> {
  for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer);
}

async function appendRemoteBytes(
  job: FileDownload,
  partial: string,
  offset: number,
  hash: Hash,
): Promise<void> {
  const { file, connection } = job;
  const context = `Downloading ${job.modelId}/${file.path}`;
  const handle = await open(partial, 'a');
  let bytes = offset;
  try {
    const blob = await downloadFile({
      repo: job.modelId,
      path: file.path,
      revision: job.commit,
      hubUrl: connection.hubUrl,
      accessToken: connection.accessToken,
      fetch: rangeCheckingFetch(connection.fetch ?? fetch, job.signal),
    });
    if (!blob) throw new HubError('not_found', `${context}: the hub has no such file`);
    const source = offset > 0 ? blob.slice(offset, file.size) : blob;
    for await (const chunk of source.stream() as unknown as AsyncIterable<Uint8Array>) {
      if (bytes + chunk.byteLength > file.size) {
        throw new HubError(
          'checksum_mismatch',
          `${context}: the hub sent more than ${file.size} bytes`,
        );
      }
      await handle.write(chunk);
      hash.update(chunk);
      bytes += chunk.byteLength;
      job.onProgress?.(bytes);
    }
    await handle.sync();
  } catch (error) {
    if (error instanceof HubError && error.code === 'checksum_mismatch') {
      await handle.close();
      await rm(partial, { force: true });
      throw error;
    }
    // The bytes so far stay in the partial file: the next attempt resumes after them.
    throw toHubError(job.signal?.aborted ? new Error('cancelled') : error, context);
  } finally {
    await handle.close().catch(() => undefined);
  }
}

/**
 * Adds the cancellation signal to every hub request, and refuses a 200 answer to a Range request
 * that does not start at 0: appending a whole file after the resumed bytes would corrupt it.
 */
function rangeCheckingFetch(inner: typeof fetch, signal: AbortSignal | undefined): typeof fetch {
  return async (input, init) => {
    const response = await inner(input, { ...init, signal });
    const range = new Headers(init?.headers).get('range');
    if (range && !/^bytes=0-/.test(range) && response.status === 200) {
      await response.body?.cancel();
      throw new Error(
        `the server ignored the Range header (${range}) so the download cannot resume`,
      );
    }
    return response;
  };
}

async function sizeOf(path: string): Promise<number> {
  try {
    return (await stat(path)).size;
  } catch {
    return 0;
  }
}
