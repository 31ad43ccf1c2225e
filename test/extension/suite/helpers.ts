/** Shared set-up for the extension-host suites: the extension's API, settings, fixtures. */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import * as vscode from 'vscode';
import type { DesignToCodeExtension } from '../../../src/extension';
import type { SourceImage } from '../../../src/generation/api';
import type { ProgressStage } from '../../../src/protocol/panel';
import {
  startOpenAiStub,
  type OpenAiStub,
  type StubBehaviour,
} from '../../support/openai-stub-server';

export const EXTENSION_ID =
  process.env.DESIGN_TO_CODE_EXTENSION_ID ?? 'design-to-code.design-to-code';

export async function extensionApi(): Promise<DesignToCodeExtension> {
  const extension = vscode.extensions.getExtension<DesignToCodeExtension>(EXTENSION_ID);
  if (!extension) throw new Error(`${EXTENSION_ID} is not installed in this extension host`);
  return extension.activate();
}

export function repoRoot(): string {
  const fromEnv = process.env.DESIGN_TO_CODE_REPO;
  if (fromEnv) return fromEnv;
  return vscode.extensions.getExtension(EXTENSION_ID)!.extensionPath;
}

export function fixturesDir(): string {
  return process.env.DESIGN_TO_CODE_FIXTURES ?? path.join(repoRoot(), 'test', 'fixtures');
}

export function fixtureImage(name = 'mockup_320x256.png'): SourceImage {
  const bytes = readFileSync(path.join(fixturesDir(), 'qwen3vl-tiny', 'images', name));
  return { bytes: new Uint8Array(bytes), mimeType: 'image/png', name };
}

/** Sets designToCode.* settings (user level) and returns a function that restores them. */
export async function useSettings(values: Record<string, unknown>): Promise<() => Promise<void>> {
  const configuration = vscode.workspace.getConfiguration('designToCode');
  const previous = Object.keys(values).map(
    (key) => [key, configuration.inspect(key)?.globalValue] as const,
  );
  for (const [key, value] of Object.entries(values)) {
    await configuration.update(key, value, vscode.ConfigurationTarget.Global);
  }
  return async () => {
    const current = vscode.workspace.getConfiguration('designToCode');
    for (const [key, value] of previous)
      await current.update(key, value, vscode.ConfigurationTarget.Global);
  };
}

export interface StubbedExtension {
  extension: DesignToCodeExtension;
  stub: OpenAiStub;
  /** Puts the settings back, then closes the stub. */
  restore: () => Promise<void>;
}

/**
 * The extension pointed at a fresh loopback OpenAI-compatible stand-in serving model
 * 'stub-vl', with the other settings given.
 */
export async function useOpenAiStub(
  behaviour: StubBehaviour,
  settings: Record<string, unknown>,
): Promise<StubbedExtension> {
  const extension = await extensionApi();
  const stub = await startOpenAiStub(behaviour);
  const restoreSettings = await useSettings({
    backend: 'openai-compatible',
    endpoint: stub.url,
    model: 'stub-vl',
    ...settings,
  });
  return {
    extension,
    stub,
    restore: async () => {
      await restoreSettings();
      await stub.close();
    },
  };
}

export async function closeAllEditors(): Promise<void> {
  await vscode.commands.executeCommand('workbench.action.revertAndCloseActiveEditor');
  await vscode.commands.executeCommand('workbench.action.closeAllEditors');
}

export function documentFor(uri: string): vscode.TextDocument {
  const document = vscode.workspace.textDocuments.find(
    (candidate) => candidate.uri.toString() === uri,
  );
  if (!document) throw new Error(`no open document ${uri}`);
  return document;
}

/** Records progress events and resolves a promise when one matches. */
export class ProgressRecorder {
  readonly events: ProgressStage[] = [];
  private waiters: { test: (progress: ProgressStage) => boolean; resolve: () => void }[] = [];

  readonly listener = (progress: ProgressStage): void => {
    this.events.push(progress);
    this.waiters = this.waiters.filter((waiter) => {
      if (!waiter.test(progress)) return true;
      waiter.resolve();
      return false;
    });
  };

  when(test: (progress: ProgressStage) => boolean): Promise<void> {
    if (this.events.some(test)) return Promise.resolve();
    return new Promise((resolve) => this.waiters.push({ test, resolve }));
  }
}

export function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  return Promise.race([
    promise,
    new Promise<T>((_, reject) =>
      setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms),
    ),
  ]);
}

let counter = 0;
export function requestId(): string {
  return `test-${Date.now()}-${++counter}`;
}
