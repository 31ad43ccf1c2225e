/**
 * Where the image comes in: paste (Ctrl/Cmd+V anywhere in the panel), drop, or the Choose
 * file button (the host shows its file dialog). Shows the current image.
 */
import type { ImagePayload } from '../../src/protocol/panel';
import { h } from '../shared/dom';
import { firstImage, imageFileProblem, readImageFile } from './imageFile';

export interface ImageZoneEvents {
  onImage(image: ImagePayload): void;
  onProblem(message: string): void;
  onChooseFile(): void;
}

const isMac = navigator.platform.toUpperCase().includes('MAC');

export class ImageZone {
  private readonly preview = h('img', { class: 'image-preview', alt: '', hidden: true });
  private readonly hint = h(
    'p',
    { class: 'hint' },
    `Paste a screenshot or mockup (${isMac ? '⌘V' : 'Ctrl+V'}), drop an image here (hold Shift while dropping), or`,
  );
  private readonly chooseButton = h(
    'button',
    { type: 'button', class: 'secondary' },
    'Choose file…',
  );
  private readonly caption = h('p', { class: 'image-caption', 'aria-live': 'polite' });
  readonly element = h(
    'section',
    {
      class: 'image-zone',
      tabindex: '0',
      role: 'group',
      'aria-label': 'Image: paste, drop or choose a file',
    },
    this.preview,
    this.hint,
    this.chooseButton,
    this.caption,
  );

  constructor(private readonly events: ImageZoneEvents) {
    this.chooseButton.addEventListener('click', () => events.onChooseFile());
    // Keyboard users reach the zone with Tab: Enter or Space there chooses a file.
    this.element.addEventListener('keydown', (event) => {
      if (event.target === this.element && (event.key === 'Enter' || event.key === ' ')) {
        event.preventDefault();
        events.onChooseFile();
      }
    });
    document.addEventListener('paste', (event) => this.onPaste(event));
    // The whole panel takes drops, not just the zone: a near miss should not be lost.
    document.addEventListener('dragover', (event) => {
      event.preventDefault();
      this.element.classList.add('dragging');
    });
    document.addEventListener('dragleave', (event) => {
      if (event.relatedTarget === null) this.element.classList.remove('dragging');
    });
    document.addEventListener('drop', (event) => this.onDrop(event));
  }

  focus(): void {
    this.element.focus();
  }

  show(image: ImagePayload): void {
    this.preview.src = `data:${image.mimeType};base64,${image.base64}`;
    this.preview.alt = `The image to turn into code: ${image.name}`;
    this.preview.hidden = false;
    this.caption.textContent = image.name;
    this.hint.textContent = 'Paste, drop or choose another image to replace it, or';
  }

  private onPaste(event: ClipboardEvent): void {
    const files = event.clipboardData?.files;
    const file = files && firstImage(files);
    if (!file) {
      // Text pasted into the instruction box stays text; elsewhere say what is expected.
      if (!(event.target instanceof HTMLTextAreaElement)) {
        this.events.onProblem('The clipboard holds no image. Copy a screenshot or an image file.');
      }
      return;
    }
    event.preventDefault();
    void this.accept(file);
  }

  private onDrop(event: DragEvent): void {
    event.preventDefault();
    this.element.classList.remove('dragging');
    const files = event.dataTransfer?.files;
    const file = files && firstImage(files);
    if (file) void this.accept(file);
    else this.events.onProblem('Drop an image file (PNG, JPEG, WebP, GIF or SVG).');
  }

  private async accept(file: File): Promise<void> {
    const problem = imageFileProblem(file);
    if (problem) return this.events.onProblem(problem);
    try {
      this.events.onImage(await readImageFile(file));
    } catch (error) {
      this.events.onProblem(error instanceof Error ? error.message : String(error));
    }
  }
}
