/** The settings as VS Code holds them, read through the typed reader in ./schema. */
import * as vscode from 'vscode';
import type { HostSettings } from '../generation/api';
import { Disposable } from '../util/disposable';
import { readSettings, type Settings } from './schema';

export const SECTION = 'designToCode';

export class SettingsService extends Disposable implements HostSettings {
  private readonly changed = this.register(new vscode.EventEmitter<void>());
  private readonly serverSettingsChanged = this.register(
    new vscode.EventEmitter<(key: keyof Settings) => boolean>(),
  );
  readonly onDidChange = this.changed.event;
  /** Fires on every change of this section with a test of which settings changed. */
  readonly onDidChangeSettings = this.serverSettingsChanged.event;

  constructor() {
    super();
    this.register(
      vscode.workspace.onDidChangeConfiguration((event) => {
        if (!event.affectsConfiguration(SECTION)) return;
        this.changed.fire();
        this.serverSettingsChanged.fire((key) => event.affectsConfiguration(`${SECTION}.${key}`));
      }),
    );
  }

  read(): Settings {
    const configuration = vscode.workspace.getConfiguration(SECTION);
    return readSettings((key) => configuration.get(key));
  }

  defaultTarget() {
    return this.read().defaultTarget;
  }
  backendLabel(): string {
    const settings = this.read();
    return settings.backend === 'local'
      ? `local (${settings.model})`
      : `${settings.endpoint} (${settings.model})`;
  }
  previewAutoOpen(): boolean {
    return this.read().previewAutoOpen;
  }
  previewAllowScripts(): boolean {
    return this.read().previewAllowScripts;
  }

  async update<K extends keyof Settings>(key: K, value: Settings[K]): Promise<void> {
    await vscode.workspace
      .getConfiguration(SECTION)
      .update(key, value, vscode.ConfigurationTarget.Global);
  }
}
