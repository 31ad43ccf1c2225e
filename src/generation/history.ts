/**
 * Recent generations, kept across sessions: the list in globalState, each source image as a
 * file in globalStorageUri (images are too big for globalState). Oldest entries drop out. An
 * image that cannot be written (a full disk) is kept in memory instead, so that its generation
 * can still be refined in this session; `add` says so.
 */
import * as vscode from 'vscode';
import type { HistoryEntry } from '../protocol/panel';
import type { Target } from '../protocol/targets';
import type { SourceImage } from './api';
import type { Conversation } from './prompts';

const KEY = 'designToCode.history';
const LIMIT = 20;
/** Images up to this size double as the thumbnail; larger ones get none (the panel shows a placeholder). */
const THUMBNAIL_LIMIT = 48 * 1024;

export interface HistoryRecord extends HistoryEntry {
  code: string;
  languageId: string;
  imageFile: string;
  imageName: string;
  mimeType: string;
  /** The conversation that produced `code` (absent in records from before it was kept). */
  conversation?: Conversation;
}

const EXTENSIONS: Record<string, string> = {
  'image/png': 'png',
  'image/jpeg': 'jpg',
  'image/webp': 'webp',
  'image/gif': 'gif',
  'image/svg+xml': 'svg',
};

function summaryOf(code: string): string {
  const title = /<title>([^<]{1,80})<\/title>/i.exec(code)?.[1];
  if (title) return title.trim();
  const component = /export\s+default\s+function\s+(\w+)/.exec(code)?.[1];
  if (component) return component;
  const diagram = /<diagram[^>]*\bname="([^"]{1,80})"/.exec(code)?.[1];
  if (diagram) return diagram;
  return (code.split('\n').find((line) => line.trim()) ?? '').trim().slice(0, 80);
}

/** A generation added to the history, and why its image was not written, if it was not. */
export interface AddedRecord {
  record: HistoryRecord;
  imageNotSaved?: string;
}

export class HistoryStore {
  private readonly emitter = new vscode.EventEmitter<HistoryEntry[]>();
  readonly onDidChange = this.emitter.event;
  /** Images that could not be written, by image file name: for this session only. */
  private readonly unsavedImages = new Map<string, SourceImage>();

  constructor(
    private readonly state: vscode.Memento,
    private readonly storage: vscode.Uri,
  ) {}

  records(): HistoryRecord[] {
    return this.state.get<HistoryRecord[]>(KEY, []);
  }

  entries(): HistoryEntry[] {
    return this.records().map(({ id, createdAt, target, instruction, thumbnail, summary }) => ({
      id,
      createdAt,
      target,
      instruction,
      thumbnail,
      summary,
    }));
  }

  get(id: string): HistoryRecord | undefined {
    return this.records().find((record) => record.id === id);
  }

  async add(input: {
    target: Target;
    instruction: string;
    image: SourceImage;
    code: string;
    languageId: string;
    conversation: Conversation;
  }): Promise<AddedRecord> {
    const id = `${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 8)}`;
    const imageFile = `${id}.${EXTENSIONS[input.image.mimeType] ?? 'img'}`;
    const imageNotSaved = await this.writeImage(imageFile, input.image.bytes);
    if (imageNotSaved) this.unsavedImages.set(imageFile, input.image);
    const thumbnail =
      input.image.bytes.byteLength <= THUMBNAIL_LIMIT
        ? `data:${input.image.mimeType};base64,${Buffer.from(input.image.bytes).toString('base64')}`
        : '';
    const record: HistoryRecord = {
      id,
      createdAt: Date.now(),
      target: input.target,
      instruction: input.instruction,
      thumbnail,
      summary: summaryOf(input.code),
      code: input.code,
      languageId: input.languageId,
      imageFile,
      imageName: input.image.name,
      mimeType: input.image.mimeType,
      conversation: input.conversation,
    };
    const records = [record, ...this.records()];
    await this.save(records.slice(0, LIMIT));
    for (const dropped of records.slice(LIMIT)) {
      this.unsavedImages.delete(dropped.imageFile);
      await vscode.workspace.fs.delete(vscode.Uri.joinPath(this.storage, dropped.imageFile)).then(
        () => undefined,
        () => undefined,
      );
    }
    return { record, imageNotSaved };
  }

  /** Writes an image into the storage folder; the reason it could not, if it could not. */
  private async writeImage(imageFile: string, bytes: Uint8Array): Promise<string | undefined> {
    try {
      await vscode.workspace.fs.createDirectory(this.storage);
      await vscode.workspace.fs.writeFile(vscode.Uri.joinPath(this.storage, imageFile), bytes);
      return undefined;
    } catch (error) {
      return error instanceof Error ? error.message : String(error);
    }
  }

  async updateCode(
    id: string,
    code: string,
    instruction: string,
    conversation: Conversation,
  ): Promise<void> {
    const records = this.records().map((record) =>
      record.id === id
        ? { ...record, code, instruction, conversation, summary: summaryOf(code) }
        : record,
    );
    await this.save(records);
  }

  async image(record: HistoryRecord): Promise<SourceImage> {
    const unsaved = this.unsavedImages.get(record.imageFile);
    if (unsaved) return unsaved;
    const bytes = await vscode.workspace.fs.readFile(
      vscode.Uri.joinPath(this.storage, record.imageFile),
    );
    return { bytes, mimeType: record.mimeType, name: record.imageName };
  }

  private async save(records: HistoryRecord[]): Promise<void> {
    await this.state.update(KEY, records);
    this.emitter.fire(this.entries());
  }

  dispose(): void {
    this.emitter.dispose();
  }
}
