/** An error shown in place, with a button for each action that can fix it. */
import type { ErrorAction } from '../../src/protocol/panel';
import { h } from '../shared/dom';

export const ACTION_LABELS: Record<ErrorAction, string> = {
  downloadModel: 'Download model',
  chooseModel: 'Choose model…',
  showLog: 'Show log',
  openSettings: 'Open settings',
  startServer: 'Start server',
  restartServer: 'Restart server',
  setApiKey: 'Set API key…',
};

export class ErrorBox {
  readonly element = h('div', { class: 'error', role: 'alert', hidden: true });

  constructor(private readonly onAction: (action: ErrorAction) => void) {}

  show(message: string, actions: ErrorAction[] = []): void {
    const buttons = actions.map((action) => {
      const button = h('button', { type: 'button', class: 'secondary' }, ACTION_LABELS[action]);
      button.addEventListener('click', () => this.onAction(action));
      return button;
    });
    this.element.replaceChildren(
      h('p', {}, message),
      ...(buttons.length > 0 ? [h('div', { class: 'actions' }, ...buttons)] : []),
    );
    this.element.hidden = false;
  }

  hide(): void {
    this.element.hidden = true;
    this.element.replaceChildren();
  }
}
