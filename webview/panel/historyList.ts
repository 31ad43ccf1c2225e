/** The list of recent generations; choosing one reopens its code in an editor. */
import type { HistoryEntry } from '../../src/protocol/panel';
import { TARGETS } from '../../src/protocol/targets';
import { h } from '../shared/dom';

const timeFormat = new Intl.DateTimeFormat(undefined, { dateStyle: 'short', timeStyle: 'short' });

/** Only inline image data is shown: a thumbnail can never make the webview fetch anything. */
function isImageDataUrl(value: string): boolean {
  return /^data:image\/(png|jpeg|webp|gif);base64,/.test(value);
}

export class HistoryList {
  private readonly list = h('ul', { class: 'history', 'aria-labelledby': 'history-heading' });
  readonly element = h(
    'section',
    { hidden: true },
    h('h2', { id: 'history-heading' }, 'Recent generations'),
    this.list,
  );

  constructor(private readonly onOpen: (historyId: string) => void) {}

  render(entries: HistoryEntry[]): void {
    this.element.hidden = entries.length === 0;
    this.list.replaceChildren(...entries.map((entry) => this.item(entry)));
  }

  private item(entry: HistoryEntry): HTMLLIElement {
    const thumbnail = isImageDataUrl(entry.thumbnail)
      ? h('img', { src: entry.thumbnail, alt: '' })
      : h('span', { class: 'thumbnail-placeholder', 'aria-hidden': 'true' });
    const details = [TARGETS[entry.target].label, timeFormat.format(entry.createdAt)];
    if (entry.instruction) details.push(`“${entry.instruction}”`);
    const button = h(
      'button',
      { type: 'button', class: 'history-item', title: 'Reopen this result in an editor' },
      thumbnail,
      h(
        'span',
        { class: 'history-text' },
        h('span', { class: 'history-summary' }, entry.summary || '(empty result)'),
        h('span', { class: 'history-details' }, details.join(' · ')),
      ),
    );
    button.addEventListener('click', () => this.onOpen(entry.id));
    return h('li', {}, button);
  }
}
