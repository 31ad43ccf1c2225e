/**
 * Streams generated code into a document as it arrives, then replaces it with the final
 * (extracted, formatted) code, so that the whole generation undoes as one step.
 *
 * How the single undo step works: every edit goes through TextEditor.edit; the first one
 * pushes an undo stop before it, the streaming edits and the final replacement push none, and
 * the final replacement pushes one after it. VS Code appends edits to the open undo element
 * until a stop is pushed, so the whole generation is one element. When the document has no
 * visible editor (the user switched away mid-stream) edits fall back to WorkspaceEdit, which
 * VS Code records as separate steps: the code is still right, only the undo is finer.
 * On stop or error the text already inserted stays; finish(undefined) just closes the step.
 */
import * as vscode from 'vscode';
import { showGeneratedDocument } from '../layout/editorGroups';
import type { InsertMode } from '../settings/schema';

export interface StreamTarget {
  document: vscode.TextDocument;
  /** Offset where the generated text starts, and the length it currently has there. */
  start: number;
  length: number;
}

/** Where a generation writes: a new untitled document, the cursor, or the selection. */
export async function openStreamTarget(
  languageId: string,
  mode: InsertMode,
  editor: vscode.TextEditor | undefined,
): Promise<StreamTarget> {
  if (mode !== 'new-document' && editor) {
    const selection = editor.selection;
    const start = editor.document.offsetAt(
      mode === 'replace-selection' ? selection.start : selection.active,
    );
    const end = mode === 'replace-selection' ? editor.document.offsetAt(selection.end) : start;
    return { document: editor.document, start, length: end - start };
  }
  const document = await vscode.workspace.openTextDocument({ language: languageId, content: '' });
  // Beside the panel, not over it: the user keeps the progress line and the Stop button.
  await showGeneratedDocument(document);
  return { document, start: 0, length: 0 };
}

function commonPrefix(a: string, b: string): number {
  const max = Math.min(a.length, b.length);
  let i = 0;
  while (i < max && a.charCodeAt(i) === b.charCodeAt(i)) i++;
  return i;
}

function commonSuffix(a: string, b: string, prefix: number): number {
  const max = Math.min(a.length, b.length) - prefix;
  let i = 0;
  while (i < max && a.charCodeAt(a.length - 1 - i) === b.charCodeAt(b.length - 1 - i)) i++;
  return i;
}

export class EditorStream implements vscode.Disposable {
  /** The text this stream has put in the document. */
  private shown: string | undefined;
  private wanted = '';
  private pump: Promise<void> = Promise.resolve();
  private pumping = false;
  private firstEdit = true;
  private applying = false;
  private failure: unknown;

  private target: StreamTarget | undefined;
  private subscription: vscode.Disposable | undefined;

  /**
   * `open` is called on the first text to show, so a request that fails before any code
   * arrives leaves no empty document behind. `onOpen` hears which document was chosen.
   */
  constructor(
    private readonly open: () => Promise<StreamTarget>,
    private readonly onOpen: (document: vscode.TextDocument) => void = () => undefined,
  ) {}

  private async opened(): Promise<StreamTarget> {
    if (this.target) return this.target;
    const target = await this.open();
    this.target = target;
    // Keep the range right when the user edits above it while the code streams.
    this.subscription = vscode.workspace.onDidChangeTextDocument((event) => {
      if (event.document !== target.document || this.applying) return;
      for (const change of event.contentChanges) {
        if (change.rangeOffset + change.rangeLength <= target.start) {
          target.start += change.text.length - change.rangeLength;
        }
      }
    });
    this.onOpen(target.document);
    return target;
  }

  /** The document written to, once the first text arrived. */
  get document(): vscode.TextDocument | undefined {
    return this.target?.document;
  }

  /** Shows `code` in place of what was streamed so far (coalesced: only the latest counts). */
  update(code: string): void {
    this.wanted = code;
    if (this.pumping) return;
    this.pumping = true;
    this.pump = this.pump.then(async () => {
      try {
        while (this.wanted !== (this.shown ?? '')) {
          await this.replaceWith(this.wanted, false);
        }
      } catch (error) {
        this.failure ??= error;
        this.wanted = this.shown ?? '';
      } finally {
        this.pumping = false;
      }
    });
  }

  /**
   * Waits for streaming edits, then puts `finalCode` in place (undefined keeps what is there)
   * and closes the undo step.
   */
  async finish(finalCode: string | undefined): Promise<void> {
    await this.pump;
    if (this.failure) throw this.failure;
    // Nothing arrived and nothing to write: leave no empty document behind.
    if (!this.target && !finalCode) return this.dispose();
    await this.replaceWith(finalCode ?? this.shown ?? '', true);
    this.dispose();
  }

  private async replaceWith(text: string, last: boolean): Promise<void> {
    const target = await this.opened();
    const document = target.document;
    const current = document.getText(rangeOf(target));
    const prefix = commonPrefix(current, text);
    const suffix = commonSuffix(current, text, prefix);
    const from = document.positionAt(target.start + prefix);
    const to = document.positionAt(target.start + current.length - suffix);
    const insert = text.slice(prefix, text.length - suffix);
    const range = new vscode.Range(from, to);
    const changes = !range.isEmpty || insert.length > 0;

    const editor = vscode.window.visibleTextEditors.find(
      (candidate) => candidate.document === document,
    );
    this.applying = true;
    try {
      if (editor) {
        const undoStopBefore = this.firstEdit;
        const applied = await editor.edit((builder) => changes && builder.replace(range, insert), {
          undoStopBefore,
          undoStopAfter: last,
        });
        if (!applied && changes) await applyWorkspaceEdit(document, range, insert);
      } else if (changes) {
        await applyWorkspaceEdit(document, range, insert);
      }
    } finally {
      this.applying = false;
    }
    this.firstEdit = false;
    target.length = text.length;
    this.shown = text;
  }

  dispose(): void {
    this.subscription?.dispose();
  }
}

/** The range a stream target's text occupies now. */
export function rangeOf(target: StreamTarget): vscode.Range {
  return new vscode.Range(
    target.document.positionAt(target.start),
    target.document.positionAt(target.start + target.length),
  );
}

async function applyWorkspaceEdit(
  document: vscode.TextDocument,
  range: vscode.Range,
  text: string,
): Promise<void> {
  const edit = new vscode.WorkspaceEdit();
  edit.replace(document.uri, range, text);
  if (!(await vscode.workspace.applyEdit(edit))) {
    throw new Error('VS Code refused the edit (is the document read-only?).');
  }
}
