/**
 * Temporary build directories and the onnxruntime sessions opened on them, for a suite that
 * builds graphs: each is released or removed once, in the suite's `after`.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';

export class ScratchSessions {
  private readonly dirs: string[] = [];
  private readonly sessions: ort.InferenceSession[] = [];

  constructor(private readonly prefix: string) {}

  /** A new empty directory, removed by release(). */
  dir(): string {
    const dir = mkdtempSync(join(tmpdir(), this.prefix));
    this.dirs.push(dir);
    return dir;
  }

  /** A session on `path` (warnings silenced), released by release(). */
  async open(path: string, options: ort.InferenceSession.SessionOptions = {}) {
    const session = await ort.InferenceSession.create(path, { logSeverityLevel: 3, ...options });
    this.sessions.push(session);
    return session;
  }

  async release(): Promise<void> {
    for (const session of this.sessions) await session.release();
    for (const dir of this.dirs) rmSync(dir, { recursive: true, force: true });
  }
}
