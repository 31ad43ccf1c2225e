/** The API key of a remote endpoint, kept in SecretStorage (never in settings), one per endpoint. */
import * as vscode from 'vscode';

function keyFor(endpoint: string): string {
  return `designToCode.apiKey:${endpoint.replace(/\/+$/, '')}`;
}

export class ApiKeyStore {
  constructor(private readonly secrets: vscode.SecretStorage) {}

  get(endpoint: string): Thenable<string | undefined> {
    return this.secrets.get(keyFor(endpoint));
  }

  async set(endpoint: string, key: string): Promise<void> {
    if (key) await this.secrets.store(keyFor(endpoint), key);
    else await this.secrets.delete(keyFor(endpoint));
  }

  /** Asks for the key of `endpoint`; an empty answer removes it, Escape changes nothing. */
  async prompt(endpoint: string): Promise<boolean> {
    const key = await vscode.window.showInputBox({
      title: 'Design to Code: API key',
      prompt: `API key for ${endpoint} (stored in VS Code's secret storage; leave empty to remove it)`,
      password: true,
      ignoreFocusOut: true,
    });
    if (key === undefined) return false;
    await this.set(endpoint, key.trim());
    return true;
  }
}
