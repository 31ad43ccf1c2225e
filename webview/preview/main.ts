/**
 * The live preview: the document rendered at a device width (a sandboxed frame for HTML,
 * draw.io's viewer for diagrams), with the source image beside it or overlaid.
 */
import type { HostToPreview, PreviewContent, PreviewImage } from '../../src/protocol/preview';
import type { PreviewToHost } from '../../src/protocol/preview';
import { h } from '../shared/dom';
import { connectToHost } from '../shared/vscodeApi';
import { renderDiagram } from './drawioView';
import {
  DEVICE_WIDTHS,
  deviceWidth,
  fitScale,
  isDevice,
  isImageMode,
  type Device,
  type ImageMode,
} from './layout';

interface SavedState {
  device: Device;
  imageMode: ImageMode;
  opacity: number;
}

const host = connectToHost<PreviewToHost, SavedState>();
const saved = host.state();
const nonce = document.currentScript?.nonce ?? '';
const drawioBase = document.body.dataset.drawioBase ?? '';

const deviceSelect = h('select', { id: 'device' }, h('option', { value: 'fit' }, 'Fit to view'));
for (const [device, width] of Object.entries(DEVICE_WIDTHS)) {
  const label = device[0].toUpperCase() + device.slice(1);
  deviceSelect.append(h('option', { value: device }, `${label} (${width}px)`));
}
const imageModeSelect = h(
  'select',
  { id: 'image-mode' },
  h('option', { value: 'hidden' }, 'Hidden'),
  h('option', { value: 'beside' }, 'Beside'),
  h('option', { value: 'overlay' }, 'Overlay'),
);
const opacityInput = h('input', { id: 'opacity', type: 'range', min: '0', max: '100' });
const opacityGroup = h(
  'span',
  { class: 'field' },
  h('label', { for: 'opacity' }, 'Opacity'),
  opacityInput,
);
const imageGroup = h(
  'span',
  { class: 'field', hidden: true },
  h('label', { for: 'image-mode' }, 'Source image'),
  imageModeSelect,
  opacityGroup,
);
const deviceGroup = h(
  'span',
  { class: 'field' },
  h('label', { for: 'device' }, 'Width'),
  deviceSelect,
);
const titleLine = h('span', { class: 'title' });
const frame = h('iframe', { title: 'Page preview', sandbox: '' });
const overlay = h('img', { class: 'overlay', alt: '', hidden: true });
const page = h('div', { class: 'page' }, frame, overlay);
const pageBox = h('div', { class: 'page-box' }, page);
const besideImage = h('img', { class: 'beside', alt: '', hidden: true });
const diagram = h('div', { class: 'diagram', hidden: true });
const message = h('p', { class: 'message', role: 'status' });
const stage = h('div', { class: 'stage' }, pageBox, diagram, besideImage);

document
  .getElementById('app')!
  .replaceChildren(
    h('div', { class: 'toolbar' }, titleLine, deviceGroup, imageGroup),
    message,
    stage,
  );

deviceSelect.value = isDevice(saved.device) ? saved.device : 'fit';
imageModeSelect.value = isImageMode(saved.imageMode) ? saved.imageMode : 'beside';
opacityInput.value = String(saved.opacity ?? 50);

let content: PreviewContent | undefined;
let sourceImage: PreviewImage | null = null;

function save(): void {
  host.saveState({
    device: deviceSelect.value as Device,
    imageMode: imageModeSelect.value as ImageMode,
    opacity: Number(opacityInput.value),
  });
}

/** Sizes the page to the chosen device width, scaled down when the view is narrower. */
function layout(): void {
  const mode = imageModeSelect.value as ImageMode;
  const showImage = sourceImage !== null && mode !== 'hidden';
  const pageShown = content?.kind === 'html' || content?.kind === 'served';
  besideImage.hidden = !(showImage && mode === 'beside' && pageShown);
  overlay.hidden = !(showImage && mode === 'overlay' && pageShown);
  opacityGroup.hidden = mode !== 'overlay';
  overlay.style.opacity = String(Number(opacityInput.value) / 100);

  // Beside: the image takes two fifths of the view, the page the rest.
  const besideWidth = besideImage.hidden ? 0 : Math.floor((stage.clientWidth * 2) / 5);
  const available = stage.clientWidth - besideWidth - 24;
  const width = deviceWidth(deviceSelect.value as Device, available);
  const scale = fitScale(width, available);
  // The page fills the stage's height once scaled.
  const height = Math.max(stage.clientHeight - 8, 100);
  page.style.width = `${width}px`;
  page.style.height = `${height / scale}px`;
  page.style.transform = `scale(${scale})`;
  pageBox.style.width = `${width * scale}px`;
  pageBox.style.height = `${height}px`;
  besideImage.style.maxWidth = `${Math.max(besideWidth - 8, 0)}px`;
}

function showMessage(text: string): void {
  message.textContent = text;
  message.hidden = text === '';
}

async function render(next: PreviewContent): Promise<void> {
  content = next;
  showMessage('');
  pageBox.hidden = next.kind !== 'html' && next.kind !== 'served';
  diagram.hidden = next.kind !== 'drawio';
  deviceGroup.hidden = pageBox.hidden;
  switch (next.kind) {
    case 'html':
      frame.setAttribute('sandbox', '');
      frame.removeAttribute('src');
      frame.srcdoc = next.html;
      break;
    case 'served':
      // Scripts run, in the page server's own origin; without allow-same-origin the frame
      // cannot reach the webview or the server's other paths.
      frame.setAttribute('sandbox', 'allow-scripts');
      frame.removeAttribute('srcdoc');
      frame.src = `${next.url}?v=${next.revision}`;
      break;
    case 'drawio':
      try {
        await renderDiagram(diagram, next.xml, { base: drawioBase, nonce });
      } catch (error) {
        const reason = error instanceof Error ? error.message : String(error);
        showMessage(reason);
        host.post({ type: 'renderFailed', message: reason.slice(0, 2000) });
      }
      break;
    case 'empty':
      showMessage(next.message);
      break;
  }
  layout();
}

function setSourceImage(image: PreviewImage | null): void {
  sourceImage = image;
  imageGroup.hidden = image === null;
  for (const element of [overlay, besideImage]) {
    if (image) {
      element.src = image.dataUrl;
      element.alt = `Source image: ${image.name}`;
    } else element.removeAttribute('src');
  }
  layout();
}

for (const control of [deviceSelect, imageModeSelect, opacityInput]) {
  control.addEventListener('input', () => {
    save();
    layout();
  });
}
new ResizeObserver(() => layout()).observe(stage);

host.onMessage((data) => {
  const received = data as HostToPreview;
  if (received.type === 'render') {
    titleLine.textContent = received.title;
    void render(received.content);
  } else if (received.type === 'sourceImage') {
    setSourceImage(received.image);
  }
});
host.post({ type: 'ready' });
