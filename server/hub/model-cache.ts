/**
 * The local model cache: one folder per hub id, holding the checkpoint files and, once every
 * file is downloaded and verified, a manifest. A folder without a manifest is incomplete.
 */
import { readdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { cacheDirFor, modelIdFromCacheName } from './model-ref';
import type { RemoteFile } from './remote-files';

export const MANIFEST_FILE = '.design-to-code-manifest.json';

export interface Manifest {
  modelId: string;
  commit: string;
  files: RemoteFile[];
  completedAt: string;
}

export interface CachedModel {
  modelId: string;
  dir: string;
  complete: boolean;
  commit?: string;
  /** Bytes on disk, partial downloads included. */
  bytes: number;
}

export async function readManifest(dir: string): Promise<Manifest | undefined> {
  try {
    const manifest = JSON.parse(await readFile(join(dir, MANIFEST_FILE), 'utf8')) as Manifest;
    return Array.isArray(manifest.files) && typeof manifest.commit === 'string'
      ? manifest
      : undefined;
  } catch {
    return undefined;
  }
}

export async function writeManifest(dir: string, manifest: Manifest): Promise<void> {
  const path = join(dir, MANIFEST_FILE);
  await writeFile(`${path}.tmp`, JSON.stringify(manifest, null, 2) + '\n');
  await rename(`${path}.tmp`, path);
}

export async function removeManifest(dir: string): Promise<void> {
  await rm(join(dir, MANIFEST_FILE), { force: true });
}

/** True when a file of the manifest is on disk with its listed size (it was verified on arrival). */
export async function hasFile(dir: string, file: RemoteFile): Promise<boolean> {
  try {
    return (await stat(join(dir, file.path))).size === file.size;
  } catch {
    return false;
  }
}

/** The cached checkpoint folder of a hub id if its download completed, else undefined. */
export async function completeCacheDir(modelId: string, root: string): Promise<string | undefined> {
  const dir = cacheDirFor(modelId, root);
  const manifest = await readManifest(dir);
  if (!manifest) return undefined;
  for (const file of manifest.files) if (!(await hasFile(dir, file))) return undefined;
  return dir;
}

export async function listCachedModels(root: string): Promise<CachedModel[]> {
  let names: string[];
  try {
    names = await readdir(root);
  } catch {
    return [];
  }
  const models: CachedModel[] = [];
  for (const name of names.sort()) {
    const modelId = modelIdFromCacheName(name);
    if (!modelId) continue;
    const dir = join(root, name);
    const manifest = await readManifest(dir);
    models.push({
      modelId,
      dir,
      complete: (await completeCacheDir(modelId, root)) !== undefined,
      commit: manifest?.commit,
      bytes: await folderBytes(dir),
    });
  }
  return models;
}

/** Deletes a model's cache folder; false if there was none. */
export async function removeCachedModel(modelId: string, root: string): Promise<boolean> {
  const dir = cacheDirFor(modelId, root);
  try {
    await stat(dir);
  } catch {
    return false;
  }
  await rm(dir, { recursive: true, force: true });
  return true;
}

/** Bytes of the files in `dir` and below. */
export async function folderBytes(dir: string): Promise<number> {
  let total = 0;
  for (const entry of await readdir(dir, { withFileTypes: true, recursive: true })) {
    if (entry.isFile()) total += (await stat(join(entry.parentPath, entry.name))).size;
  }
  return total;
}
