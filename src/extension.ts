import type * as vscode from 'vscode';

// Composition root: replaced by the extension work (issue 5).
export function activate(_context: vscode.ExtensionContext): void {}

export function deactivate(): void {}
