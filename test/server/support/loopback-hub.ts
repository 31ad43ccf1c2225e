/**
 * A stand-in for the Hugging Face hub (a party outside the project) on 127.0.0.1, serving
 * repositories the way huggingface.co does for @huggingface/hub: model info with the commit
 * sha, the recursive tree listing with git and LFS oids, and `resolve` downloads with Range
 * support, ETag / X-Repo-Commit headers and the EntryNotFound error code. It can also misbehave
 * on purpose: break a transfer off after some bytes, or serve bytes that do not match the listing.
 */
import { createHash } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface HubFile {
  path: string;
  content: Buffer;
  /** Stored with Git LFS (listed with an lfs sha256 oid); else a plain git blob. */
  lfs: boolean;
}

export interface Misbehaviour {
  /** Close the socket after this many body bytes of the next download of `path`, once. */
  cutAfter?: { path: string; bytes: number };
  /** Send this many body bytes of `path`, then hold the connection open without sending more. */
  stallAfter?: { path: string; bytes: number };
  /** Serve these bytes instead of the real ones for `path` (the listing keeps the real hash). */
  corrupt?: { path: string; content: Buffer };
}

export interface LoopbackHub {
  url: string;
  commit: string;
  /** Every request as `METHOD path [range]`. */
  log: string[];
  misbehave: Misbehaviour;
  close(): Promise<void>;
}

export async function startLoopbackHub(modelId: string, files: HubFile[]): Promise<LoopbackHub> {
  const commit = createHash('sha1')
    .update(files.map((file) => file.path).join())
    .digest('hex');
  const hub: LoopbackHub = { url: '', commit, log: [], misbehave: {}, close: async () => {} };
  const server: Server = createServer((request, response) => {
    hub.log.push(
      `${request.method} ${request.url}${request.headers.range ? ` ${request.headers.range}` : ''}`,
    );
    try {
      route(hub, modelId, files, request, response);
    } catch (error) {
      response.writeHead(500).end(String(error));
    }
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  hub.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  hub.close = () =>
    new Promise((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    });
  return hub;
}

function route(
  hub: LoopbackHub,
  modelId: string,
  files: HubFile[],
  request: IncomingMessage,
  response: ServerResponse,
): void {
  const url = new URL(request.url ?? '/', hub.url);
  const path = decodeURIComponent(url.pathname);
  const revisions = new Set(['main', hub.commit]);
  const json = (status: number, body: unknown, headers: Record<string, string> = {}): void =>
    void response
      .writeHead(status, { 'content-type': 'application/json', ...headers })
      .end(JSON.stringify(body));
  const notFound = (code: string): void =>
    json(404, { error: `${code}: ${path}` }, { 'x-error-code': code });

  const info = path.match(/^\/api\/models\/(.+)\/revision\/([^/]+)$/);
  if (info) {
    if (info[1] !== modelId) return notFound('RepoNotFound');
    if (!revisions.has(info[2])) return notFound('RevisionNotFound');
    return json(200, {
      _id: 'loopback',
      id: modelId,
      sha: hub.commit,
      private: false,
      gated: false,
      downloads: 0,
      likes: 0,
      lastModified: '2025-01-01T00:00:00.000Z',
      pipeline_tag: 'image-text-to-text',
      siblings: files.map((file) => ({ rfilename: file.path })),
    });
  }

  const tree = path.match(/^\/api\/models\/(.+)\/tree\/([^/]+)$/);
  if (tree) {
    if (tree[1] !== modelId) return notFound('RepoNotFound');
    if (!revisions.has(tree[2])) return notFound('RevisionNotFound');
    return json(
      200,
      files.map((file) => ({
        type: 'file',
        oid: gitBlobSha1(file.content),
        size: file.lfs ? 134 : file.content.length,
        path: file.path,
        ...(file.lfs && {
          lfs: { oid: sha256(file.content), size: file.content.length, pointerSize: 134 },
        }),
      })),
    );
  }

  const resolve = path.match(/^\/(.+?\/[^/]+)\/resolve\/([^/]+)\/(.+)$/);
  if (resolve) {
    if (resolve[1] !== modelId) return notFound('RepoNotFound');
    if (!revisions.has(resolve[2])) return notFound('RevisionNotFound');
    const file = files.find((candidate) => candidate.path === resolve[3]);
    if (!file) return notFound('EntryNotFound');
    return serveFile(hub, file, request, response);
  }
  return notFound('NotFound');
}

function serveFile(
  hub: LoopbackHub,
  file: HubFile,
  request: IncomingMessage,
  response: ServerResponse,
): void {
  const corrupt = hub.misbehave.corrupt;
  const content = corrupt?.path === file.path ? corrupt.content : file.content;
  const etag = `"${file.lfs ? sha256(file.content) : gitBlobSha1(file.content)}"`;
  const headers: Record<string, string> = {
    'content-type': 'application/octet-stream',
    'accept-ranges': 'bytes',
    etag,
    'x-repo-commit': hub.commit,
    ...(file.lfs && { 'x-linked-etag': etag, 'x-linked-size': String(file.content.length) }),
  };
  const range = request.headers.range?.match(/^bytes=(\d+)-(\d*)$/);
  let start = 0;
  let end = content.length - 1;
  let status = 200;
  if (range) {
    start = Number(range[1]);
    end = range[2] ? Math.min(Number(range[2]), content.length - 1) : content.length - 1;
    if (start >= content.length) {
      return void response.writeHead(416, { 'content-range': `bytes */${content.length}` }).end();
    }
    status = 206;
    headers['content-range'] = `bytes ${start}-${end}/${content.length}`;
  }
  const body = content.subarray(start, end + 1);
  headers['content-length'] = String(body.length);
  response.writeHead(status, headers);
  const stall = hub.misbehave.stallAfter;
  if (stall?.path === file.path && body.length > 1) {
    hub.misbehave.stallAfter = undefined;
    response.write(body.subarray(0, stall.bytes));
    return;
  }
  const cut = hub.misbehave.cutAfter;
  if (cut?.path === file.path && body.length > 1) {
    hub.misbehave.cutAfter = undefined;
    response.write(body.subarray(0, cut.bytes), () => response.destroy());
    return;
  }
  response.end(body);
}

export function sha256(content: Buffer): string {
  return createHash('sha256').update(content).digest('hex');
}

export function gitBlobSha1(content: Buffer): string {
  return createHash('sha1').update(`blob ${content.length}\0`).update(content).digest('hex');
}
