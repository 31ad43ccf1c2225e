/**
 * Brings a hub model into the cache: lists the files at the current commit, checks the disk,
 * downloads what is missing (resuming partial files) and writes the manifest last, so the
 * folder only counts as complete once every file is verified.
 */
import { mkdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { ensureDiskSpace, freeBytesAt } from './disk-space';
import { withFolderLock } from './folder-lock';
import { downloadVerifiedFile, PARTIAL_DIR, partialPathFor } from './download-file';
import { hasFile, readManifest, removeManifest, writeManifest } from './model-cache';
import { cacheDirFor } from './model-ref';
import { describeRemoteModel, type HubConnection, type RemoteFile } from './remote-files';

export interface DownloadProgress {
  file: string;
  /** Bytes of this file on disk so far, and its size. */
  bytes: number;
  total: number;
  /** Bytes of the whole model on disk so far, and its size. */
  overallBytes: number;
  overallTotal: number;
}

export interface PullOptions {
  /** Models cache root (see defaultModelsRoot). */
  root: string;
  connection: HubConnection;
  revision?: string;
  signal?: AbortSignal;
  onProgress?: (progress: DownloadProgress) => void;
  /** Told when another process is downloading the same model and this one waits for it. */
  onWaiting?: (message: string) => void;
  /** For tests of the disk check. */
  freeBytes?: (path: string) => Promise<number>;
}

export interface PullResult {
  dir: string;
  commit: string;
  /** Files fetched from the hub by this call (the others were already cached). */
  downloaded: string[];
}

/** Where the download lock of a model lives: not in its folder, which `models rm` deletes. */
export function pullLockPath(dir: string): string {
  return join(dirname(dir), '.locks', `${basename(dir)}.lock`);
}

export async function pullModel(modelId: string, options: PullOptions): Promise<PullResult> {
  const dir = cacheDirFor(modelId, options.root);
  const lock = pullLockPath(dir);
  await mkdir(dirname(lock), { recursive: true });
  return withFolderLock(lock, () => pullLocked(modelId, dir, options), {
    signal: options.signal,
    onWait: (pid) =>
      options.onWaiting?.(
        `${modelId} is being downloaded by another process (pid ${pid}); waiting for it to finish`,
      ),
  });
}

async function pullLocked(modelId: string, dir: string, options: PullOptions): Promise<PullResult> {
  const remote = await describeRemoteModel(modelId, options.connection, options.revision);
  const previous = await readManifest(dir);
  // Files verified by this commit's manifest, or by an earlier pull that was interrupted.
  const verified = [...(previous?.files ?? []), ...(await readVerified(dir))];
  const missing: RemoteFile[] = [];
  for (const file of remote.files) {
    if (!(isSameFile(verified, file) && (await hasFile(dir, file)))) missing.push(file);
  }
  const overallTotal = remote.files.reduce((sum, file) => sum + file.size, 0);
  if (missing.length === 0 && previous?.commit === remote.commit) {
    return { dir, commit: remote.commit, downloaded: [] };
  }

  let needed = 0;
  for (const file of missing) needed += file.size - (await partialSize(dir, file));
  await ensureDiskSpace(dir, needed, options.freeBytes ?? freeBytesAt);
  await mkdir(dir, { recursive: true });
  // From here until the new manifest is written the folder is incomplete.
  await removeManifest(dir);

  // Stale versions of the missing files go first, so a size match can never pass for a check.
  for (const file of missing) await rm(join(dir, file.path), { force: true });
  const verifiedNow = remote.files.filter((file) => !missing.includes(file));
  let doneBytes = overallTotal - missing.reduce((sum, file) => sum + file.size, 0);
  for (const file of missing) {
    await downloadVerifiedFile({
      modelId,
      commit: remote.commit,
      file,
      destDir: dir,
      connection: options.connection,
      signal: options.signal,
      onProgress: (bytes) =>
        options.onProgress?.({
          file: file.path,
          bytes,
          total: file.size,
          overallBytes: doneBytes + bytes,
          overallTotal,
        }),
    });
    doneBytes += file.size;
    verifiedNow.push(file);
    await writeVerified(dir, verifiedNow);
  }
  await writeManifest(dir, {
    modelId,
    commit: remote.commit,
    files: remote.files,
    completedAt: new Date().toISOString(),
  });
  await rm(join(dir, PARTIAL_DIR), { recursive: true, force: true });
  return { dir, commit: remote.commit, downloaded: missing.map((file) => file.path) };
}

function isSameFile(files: RemoteFile[], file: RemoteFile): boolean {
  return files.some(
    (known) =>
      known.path === file.path &&
      known.size === file.size &&
      known.sha256 === file.sha256 &&
      known.gitBlobSha1 === file.gitBlobSha1,
  );
}

/** The files an unfinished pull has already verified, kept beside the partial files. */
function verifiedPath(dir: string): string {
  return join(dir, PARTIAL_DIR, 'verified.json');
}

async function readVerified(dir: string): Promise<RemoteFile[]> {
  try {
    const files = JSON.parse(await readFile(verifiedPath(dir), 'utf8')) as unknown;
    return Array.isArray(files) ? (files as RemoteFile[]) : [];
  } catch {
    return [];
  }
}

async function writeVerified(dir: string, files: RemoteFile[]): Promise<void> {
  await writeFile(`${verifiedPath(dir)}.tmp`, JSON.stringify(files));
  await rename(`${verifiedPath(dir)}.tmp`, verifiedPath(dir));
}

async function partialSize(dir: string, file: RemoteFile): Promise<number> {
  try {
    return Math.min((await stat(partialPathFor(dir, file))).size, file.size);
  } catch {
    return 0;
  }
}
