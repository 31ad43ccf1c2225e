/**
 * "Generate code from image" among the paste options when an image is pasted into an HTML,
 * JSX/TSX, CSS or .drawio document. The paste itself inserts nothing; once the user picks
 * this option the generation streams at the cursor. A pasted draw.io export that carries its
 * diagram also offers that diagram as is, without inference.
 *
 * The paste-edit API is stable from VS Code 1.97 while this extension supports 1.90, so it is
 * feature-detected and typed here (the shapes below are those of vscode.d.ts 1.97).
 */
import * as vscode from 'vscode';
import type { GenerateRequest, GenerationApi, SourceImage } from '../generation/api';
import type { Target } from '../protocol/targets';
import { PASTE_SELECTOR, pasteTargetFor } from './pasteTarget';

export const IMAGE_MIME_TYPES = ['image/png', 'image/jpeg', 'image/webp', 'image/gif'];

interface PasteEditKind {
  append(...parts: string[]): PasteEditKind;
}
interface PasteEdit {
  title: string;
  insertText: string | vscode.SnippetString;
  yieldTo?: PasteEditKind[];
}
interface PasteApi {
  DocumentPasteEdit: new (insertText: string, title: string, kind: PasteEditKind) => PasteEdit;
  DocumentDropOrPasteEditKind: { Empty: PasteEditKind; Text: PasteEditKind };
  registerDocumentPasteEditProvider(
    selector: vscode.DocumentSelector,
    provider: {
      provideDocumentPasteEdits(
        document: vscode.TextDocument,
        ranges: readonly vscode.Range[],
        dataTransfer: vscode.DataTransfer,
        context: unknown,
        token: vscode.CancellationToken,
      ): Promise<PasteEdit[] | undefined>;
      resolveDocumentPasteEdit?(edit: PasteEdit, token: vscode.CancellationToken): PasteEdit;
    },
    metadata: { providedPasteEditKinds: PasteEditKind[]; pasteMimeTypes: string[] },
  ): vscode.Disposable;
}

function pasteApi(): PasteApi | undefined {
  const api = vscode as unknown as Partial<PasteApi> & { languages: Partial<PasteApi> };
  if (!api.DocumentPasteEdit || !api.DocumentDropOrPasteEditKind) return undefined;
  if (typeof api.languages.registerDocumentPasteEditProvider !== 'function') return undefined;
  return {
    DocumentPasteEdit: api.DocumentPasteEdit,
    DocumentDropOrPasteEditKind: api.DocumentDropOrPasteEditKind,
    registerDocumentPasteEditProvider: api.languages.registerDocumentPasteEditProvider.bind(
      api.languages,
    ),
  };
}

async function imageFrom(dataTransfer: vscode.DataTransfer): Promise<SourceImage | undefined> {
  for (const mimeType of IMAGE_MIME_TYPES) {
    const item = dataTransfer.get(mimeType);
    const file = item?.asFile();
    if (!file) continue;
    return {
      bytes: await file.data(),
      mimeType,
      name: file.name || `pasted.${mimeType.split('/')[1]}`,
    };
  }
  return undefined;
}

interface PendingEdit extends PasteEdit {
  run: () => void;
}

export function registerImagePaste(
  api: GenerationApi,
  defaultTarget: () => Target,
  onError: (error: unknown) => void,
): vscode.Disposable | undefined {
  const paste = pasteApi();
  if (!paste) return undefined;
  const generateKind = paste.DocumentDropOrPasteEditKind.Empty.append('designToCode', 'generate');
  const diagramKind = paste.DocumentDropOrPasteEditKind.Empty.append('designToCode', 'diagram');
  let requestCounter = 0;

  return paste.registerDocumentPasteEditProvider(
    PASTE_SELECTOR,
    {
      async provideDocumentPasteEdits(document, _ranges, dataTransfer, _context, token) {
        const image = await imageFrom(dataTransfer);
        if (!image || token.isCancellationRequested) return undefined;
        const edits: PasteEdit[] = [];
        const diagram = api.embeddedDiagram(image);
        if (diagram && (document.uri.path.endsWith('.drawio') || document.languageId === 'xml')) {
          // The exact diagram, no inference: insert it as the paste itself.
          edits.push(
            new paste.DocumentPasteEdit(
              diagram,
              'Insert the Draw.io diagram this image carries',
              diagramKind,
            ),
          );
        }
        const generate = new paste.DocumentPasteEdit(
          '',
          'Generate code from image',
          generateKind,
        ) as PendingEdit;
        generate.yieldTo = [paste.DocumentDropOrPasteEditKind.Text];
        generate.run = () => {
          const request: GenerateRequest = {
            requestId: `paste-${Date.now()}-${++requestCounter}`,
            image,
            insertMode: 'cursor',
            ...pasteTargetFor(
              { languageId: document.languageId, path: document.uri.path },
              defaultTarget(),
            ),
          };
          api.generate(request, () => undefined).catch(onError);
        };
        edits.push(generate);
        return edits;
      },
      resolveDocumentPasteEdit(edit) {
        // Called once the user picked this edit; start after the (empty) paste has been applied.
        const pending = edit as Partial<PendingEdit>;
        if (pending.run) setTimeout(pending.run, 50);
        return edit;
      },
    },
    { providedPasteEditKinds: [generateKind, diagramKind], pasteMimeTypes: IMAGE_MIME_TYPES },
  );
}
