/** The designToCode.* commands. Each is a thin shell over a feature object. */
import * as vscode from 'vscode';
import { saveDrawio } from '../drawio/openDiagram';
import type {
  GenerationApi,
  GenerationResult,
  PanelHandle,
  PreviewHandle,
  SourceImage,
} from '../generation/api';
import { listModels } from '../openai/models';
import { isTarget, TARGETS, type Target } from '../protocol/targets';
import type { ApiKeyStore } from '../secrets/apiKey';
import { DEFAULT_LOCAL_MODEL } from '../settings/schema';
import type { SettingsService } from '../settings/settings';
import { showServerMenu, STATUS_MENU_COMMAND } from '../server/statusBar';
import type { ServerSupervisor } from '../server/supervisor';
import { withGenerationProgress } from './progress';
import { showGenerationError } from './showError';

export interface CommandDependencies {
  api: GenerationApi;
  supervisor: ServerSupervisor;
  settings: SettingsService;
  keys: ApiKeyStore;
  log: vscode.LogOutputChannel;
  panel: () => PanelHandle | undefined;
  preview: () => PreviewHandle | undefined;
}

const IMAGE_TYPES: Record<string, string> = {
  png: 'image/png',
  jpg: 'image/jpeg',
  jpeg: 'image/jpeg',
  webp: 'image/webp',
  gif: 'image/gif',
};

async function readImage(uri: vscode.Uri): Promise<SourceImage> {
  const extension = uri.path.split('.').pop()?.toLowerCase() ?? '';
  const mimeType = IMAGE_TYPES[extension];
  if (!mimeType) throw new Error(`${uri.path} is not a PNG, JPEG, WebP or GIF image.`);
  const bytes = await vscode.workspace.fs.readFile(uri);
  return { bytes, mimeType, name: uri.path.split('/').pop() ?? 'image' };
}

export function registerCommands(deps: CommandDependencies): vscode.Disposable[] {
  const { api, supervisor, settings, keys, log } = deps;
  const reportErrors =
    <A extends unknown[], R>(run: (...args: A) => Promise<R>) =>
    async (...args: A): Promise<R | undefined> => {
      try {
        return await run(...args);
      } catch (error) {
        void showGenerationError(api, error);
        return undefined;
      }
    };

  const generateFromFile = async (
    uri?: vscode.Uri,
    options?: { target?: Target; instruction?: string },
  ): Promise<GenerationResult | undefined> => {
    let file = uri instanceof vscode.Uri ? uri : undefined;
    if (!file) {
      const picked = await vscode.window.showOpenDialog({
        title: 'Generate code from an image',
        canSelectMany: false,
        filters: { Images: Object.keys(IMAGE_TYPES) },
      });
      file = picked?.[0];
    }
    if (!file) return undefined;
    const image = await readImage(file);
    if (api.embeddedDiagram(image)) {
      const choice = await vscode.window.showInformationMessage(
        `${image.name} carries its Draw.io diagram. Open that diagram as is, or generate code with the model?`,
        'Open Diagram',
        'Generate Code',
      );
      if (choice === 'Open Diagram') {
        await api.openEmbeddedDiagram(image);
        return undefined;
      }
      if (!choice) return undefined;
    }
    const target =
      options?.target && isTarget(options.target) ? options.target : settings.defaultTarget();
    return withGenerationProgress(
      api,
      `Design to Code: ${TARGETS[target].label}`,
      (onProgress, requestId) =>
        api.generate(
          { requestId, image, target, instruction: options?.instruction ?? '' },
          onProgress,
        ),
    );
  };

  const refine = async (instructionArg?: string): Promise<GenerationResult | undefined> => {
    const instruction =
      typeof instructionArg === 'string'
        ? instructionArg
        : await vscode.window.showInputBox({
            title: 'Design to Code: refine the last result',
            prompt: 'How should the code change?',
            placeHolder: 'e.g. make the header sticky and the buttons rounded',
            ignoreFocusOut: true,
          });
    if (!instruction) return undefined;
    return withGenerationProgress(api, 'Design to Code: refining', (onProgress, requestId) =>
      api.refine({ requestId, instruction }, onProgress),
    );
  };

  const chooseModel = async (): Promise<void> => {
    const current = settings.read();
    if (current.backend !== 'local') {
      const ids = await listModels(current.endpoint, await keys.get(current.endpoint), false);
      // Some endpoints list nothing (or not every alias they serve): an id can be typed too.
      const enter = '$(edit) Enter a model id…';
      const picked = await vscode.window.showQuickPick([...ids, enter], {
        title: `Models served by ${current.endpoint}`,
        placeHolder: ids.length ? current.model : 'The endpoint lists no models',
      });
      const model =
        picked === enter
          ? await vscode.window.showInputBox({ prompt: 'Model id', value: current.model })
          : picked;
      if (model?.trim()) await settings.update('model', model.trim());
      return;
    }
    const items: (vscode.QuickPickItem & { value?: string; browse?: boolean })[] = [
      {
        label: DEFAULT_LOCAL_MODEL,
        description: 'Hugging Face (downloaded on first use)',
        value: DEFAULT_LOCAL_MODEL,
      },
      { label: '$(folder) Choose a local model folder…', browse: true },
      { label: '$(edit) Enter a Hugging Face model id…' },
    ];
    const picked = await vscode.window.showQuickPick(items, {
      title: 'Design to Code: model',
      placeHolder: current.model,
    });
    if (!picked) return;
    let value = picked.value;
    if (picked.browse) {
      const folder = await vscode.window.showOpenDialog({
        canSelectFolders: true,
        canSelectFiles: false,
      });
      value = folder?.[0]?.fsPath;
    } else if (!value) {
      value = await vscode.window.showInputBox({
        prompt: 'Hugging Face model id',
        value: current.model,
      });
    }
    if (value) await settings.update('model', value);
  };

  const commands: Record<string, (...args: never[]) => unknown> = {
    'designToCode.openPanel': () => deps.panel()?.show(),
    'designToCode.generateFromClipboard': () => {
      deps.panel()?.show({ focusPaste: true });
      void vscode.window.showInformationMessage(
        "VS Code's clipboard API reads text only: press Ctrl/Cmd+V in the Design to Code panel to paste the image.",
      );
    },
    'designToCode.generateFromFile': reportErrors(generateFromFile),
    'designToCode.refine': reportErrors(refine),
    'designToCode.stop': () => api.stop(),
    'designToCode.openPreview': (uri?: vscode.Uri) =>
      deps.preview()?.show(uri instanceof vscode.Uri ? uri.toString() : undefined),
    'designToCode.startServer': reportErrors(async () => {
      if (settings.read().backend !== 'local') {
        void vscode.window.showInformationMessage(
          'Design to Code uses a remote endpoint (designToCode.backend); there is no local server to start.',
        );
        return;
      }
      await supervisor.ensureStarted();
    }),
    'designToCode.stopServer': () => supervisor.stop({ byUser: true }),
    'designToCode.restartServer': reportErrors(() => supervisor.restart()),
    'designToCode.showServerLog': () => log.show(),
    'designToCode.downloadModel': reportErrors(async () => {
      // The server downloads and builds the model before it reports ready.
      await supervisor.ensureStarted();
      void vscode.window.showInformationMessage(
        `Design to Code: the model ${supervisor.info?.model ?? ''} is ready.`,
      );
    }),
    'designToCode.chooseModel': reportErrors(chooseModel),
    'designToCode.setApiKey': () => keys.prompt(settings.read().endpoint),
    'designToCode.openSettings': () =>
      vscode.commands.executeCommand(
        'workbench.action.openSettings',
        '@ext:design-to-code.design-to-code',
      ),
    'designToCode.saveAsDrawio': reportErrors(async () => {
      const document = vscode.window.activeTextEditor?.document;
      if (!document) throw new Error('Open the diagram XML in an editor first.');
      await saveDrawio(document.getText());
    }),
    [STATUS_MENU_COMMAND]: () => showServerMenu(supervisor),
  };
  return Object.entries(commands).map(([id, handler]) =>
    vscode.commands.registerCommand(id, handler as (...args: unknown[]) => unknown),
  );
}
