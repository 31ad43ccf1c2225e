/**
 * The Design to Code panel: an image in, a target and an optional instruction, Generate and
 * Stop, honest progress, errors with the actions that fix them, and recent generations.
 */
import type {
  HistoryEntry,
  HostToPanel,
  ImagePayload,
  NextRequest,
  PanelToHost,
} from '../../src/protocol/panel';
import { MAX_INSTRUCTION_CHARS } from '../../src/protocol/panel';
import { TARGETS, isTarget, type Target } from '../../src/protocol/targets';
import { h } from '../shared/dom';
import { connectToHost } from '../shared/vscodeApi';
import { ErrorBox } from './errorBox';
import { HistoryList } from './historyList';
import { ImageZone } from './imageZone';
import { describeDone, describeProgress } from './progressText';
import { readAheadOnPause } from './readAhead';

interface SavedState {
  /** Only once the user picked one; until then the default target setting applies. */
  target?: Target;
  instruction: string;
}

const host = connectToHost<PanelToHost, SavedState>();
const saved = host.state();

let image: ImagePayload | undefined;
/** The image was chosen after the last result: Generate, not Refine, is what comes next. */
let imageIsNew = false;
/** A Draw.io export opens as it was drawn, without the model: nothing to read ahead. */
let imageHasDiagram = false;
let runningId: string | undefined;
/** Whether a result exists that Refine can continue (the most recent one in the history). */
let canRefine = false;
let targetChosen = isTarget(saved.target);

const errorBox = new ErrorBox((action) => host.post({ type: 'runAction', action }));
const history = new HistoryList((historyId) => host.post({ type: 'openHistory', historyId }));
const imageZone = new ImageZone({
  onImage: (chosen) => {
    errorBox.hide();
    setImage(chosen);
    // The host echoes it back as a chosen 'image' once it holds it.
    host.post({ type: 'imageChosen', image: chosen });
  },
  onProblem: (message) => errorBox.show(message),
  onChooseFile: () => host.post({ type: 'pickFile' }),
});

const embeddedButton = h('button', { type: 'button' }, 'Open the exact diagram');
const embeddedNotice = h(
  'div',
  { class: 'notice', hidden: true },
  h(
    'p',
    {},
    'This image is a Draw.io export and carries its diagram: open it as it was drawn, without the model.',
  ),
  embeddedButton,
);

const targetSelect = h('select', { id: 'target' });
for (const [value, { label }] of Object.entries(TARGETS)) {
  targetSelect.append(h('option', { value }, label));
}
const instructionBox = h('textarea', {
  id: 'instruction',
  rows: '3',
  maxlength: String(MAX_INSTRUCTION_CHARS),
  placeholder: 'e.g. use a dark theme, make the header sticky',
});
const generateButton = h('button', { type: 'button', title: 'Generate (Ctrl+Enter)' }, 'Generate');
const refineButton = h(
  'button',
  { type: 'button', class: 'secondary', title: 'Apply the instruction to the last result' },
  'Refine last result',
);
const stopButton = h(
  'button',
  { type: 'button', class: 'secondary', title: 'Stop (Escape)' },
  'Stop',
);
const progressBar = h('progress', { max: '100', hidden: true, 'aria-label': 'Progress' });
const statusLine = h('p', { class: 'status' });
const warningList = h('ul', { class: 'warnings', hidden: true });
const backendLine = h('p', { class: 'backend' });

document
  .getElementById('app')!
  .replaceChildren(
    h(
      'main',
      {},
      imageZone.element,
      embeddedNotice,
      h('label', { for: 'target' }, 'Produce'),
      targetSelect,
      h('label', { for: 'instruction' }, 'Instruction (optional)'),
      instructionBox,
      h('div', { class: 'buttons' }, generateButton, refineButton, stopButton),
      h(
        'div',
        { class: 'progress', role: 'status', 'aria-live': 'polite' },
        progressBar,
        statusLine,
      ),
      warningList,
      errorBox.element,
      history.element,
      backendLine,
    ),
  );

targetSelect.value = saved.target ?? 'html';
instructionBox.value = saved.instruction ?? '';

function save(): void {
  host.saveState({
    target: targetChosen ? (targetSelect.value as Target) : undefined,
    instruction: instructionBox.value,
  });
}

function setImage(chosen: ImagePayload): void {
  image = chosen;
  imageZone.show(chosen);
  updateButtons();
}

function updateButtons(): void {
  const running = runningId !== undefined;
  generateButton.disabled = running || !image;
  refineButton.disabled = running || !canRefine || instructionBox.value.trim() === '';
  stopButton.disabled = !running;
  embeddedButton.disabled = running;
}

function setStatus(text: string, percent?: number): void {
  statusLine.textContent = text;
  progressBar.hidden = runningId === undefined;
  if (percent === undefined) progressBar.removeAttribute('value');
  else progressBar.value = percent;
}

const readAhead = readAheadOnPause((next) => host.post({ type: 'readAhead', next }));
const READ_AHEAD_STATUS = {
  reading: 'Reading ahead…',
  read: 'Ready: Generate starts at once.',
  idle: '',
} as const;

function readAheadStatus(message: Extract<HostToPanel, { type: 'readAhead' }>): string {
  if (message.state !== 'reading' || message.percent === undefined) {
    return READ_AHEAD_STATUS[message.state];
  }
  return `Reading ahead: ${message.reading ?? 'image'} ${Math.floor(message.percent)}%`;
}

/** What Generate or Refine would ask for now, if either could start. */
function nextRequest(): NextRequest | undefined {
  if (runningId) return undefined;
  const instruction = instructionBox.value.trim();
  if (image && imageIsNew) {
    if (imageHasDiagram) return undefined;
    return { kind: 'generate', target: targetSelect.value as Target, instruction };
  }
  return canRefine && instruction ? { kind: 'refine', instruction } : undefined;
}

/** The host holds a new image the user chose (its 'image' message, chosen). */
function newImageChosen(): void {
  imageIsNew = true;
  readAhead.cancel();
  readAhead.changed(nextRequest());
}

function startRequest(message: (requestId: string) => PanelToHost): void {
  readAhead.cancel();
  const requestId = crypto.randomUUID();
  runningId = requestId;
  errorBox.hide();
  warningList.hidden = true;
  setStatus('Starting…');
  updateButtons();
  host.post(message(requestId));
}

function finishRequest(text: string): void {
  runningId = undefined;
  setStatus(text);
  updateButtons();
  save();
}

function generate(): void {
  const chosen = image;
  if (!chosen || runningId) return;
  startRequest((requestId) => ({
    type: 'generate',
    requestId,
    image: chosen,
    target: targetSelect.value as Target,
    instruction: instructionBox.value.trim(),
  }));
}

function refine(): void {
  const instruction = instructionBox.value.trim();
  if (!canRefine || !instruction || runningId) return;
  startRequest((requestId) => ({ type: 'refine', requestId, instruction }));
}

function stop(): void {
  if (runningId) host.post({ type: 'stop', requestId: runningId });
}

generateButton.addEventListener('click', generate);
refineButton.addEventListener('click', refine);
stopButton.addEventListener('click', stop);
embeddedButton.addEventListener('click', () => host.post({ type: 'useEmbeddedDiagram' }));
targetSelect.addEventListener('change', () => {
  targetChosen = true;
  save();
  readAhead.changed(nextRequest());
});
instructionBox.addEventListener('input', () => {
  updateButtons();
  save();
  readAhead.changed(nextRequest());
});
document.addEventListener('keydown', (event) => {
  if (event.key === 'Enter' && (event.ctrlKey || event.metaKey)) {
    event.preventDefault();
    generate();
  } else if (event.key === 'Escape' && runningId) {
    event.preventDefault();
    stop();
  }
});

function showHistory(entries: HistoryEntry[]): void {
  history.render(entries);
  canRefine ||= entries.length > 0;
  updateButtons();
}

/**
 * Whether a result belongs to what this view shows: the running request, or, when none runs
 * (the webview was reloaded while hidden), the host's replay of the last outcome.
 */
function isShown(requestId: string): boolean {
  return runningId === undefined || requestId === runningId;
}

function isCurrent(requestId: string | undefined): boolean {
  return requestId !== undefined && requestId === runningId;
}

function receive(message: HostToPanel): void {
  switch (message.type) {
    case 'init':
      if (!targetChosen) targetSelect.value = message.defaultTarget;
      backendLine.textContent = `Model: ${message.backend}`;
      showHistory(message.history);
      break;
    case 'image':
      setImage(message.image);
      embeddedNotice.hidden = !message.embeddedDiagram;
      imageHasDiagram = message.embeddedDiagram;
      if (message.chosen) newImageChosen();
      break;
    case 'progress': {
      // After a reload the host resends the running request's progress: adopt it.
      if (runningId === undefined) runningId = message.requestId;
      if (!isCurrent(message.requestId)) break;
      const view = describeProgress(message.progress);
      setStatus(view.text, view.percent);
      updateButtons();
      break;
    }
    case 'done':
      if (!isShown(message.requestId)) break;
      canRefine = true;
      imageIsNew = false;
      finishRequest(describeDone(message.tokens, message.tokensPerSecond));
      warningList.replaceChildren(...message.warnings.map((warning) => h('li', {}, warning)));
      warningList.hidden = message.warnings.length === 0;
      break;
    case 'stopped':
      if (!isShown(message.requestId)) break;
      finishRequest('Stopped. The code produced so far stays in the editor.');
      break;
    case 'error':
      if (isCurrent(message.requestId)) finishRequest('');
      errorBox.show(message.message, message.actions);
      break;
    case 'history':
      showHistory(message.history);
      break;
    case 'focusPaste':
      imageZone.focus();
      break;
    case 'readAhead':
      // A request's own progress speaks for it.
      if (runningId === undefined) setStatus(readAheadStatus(message));
      break;
  }
}

host.onMessage((data) => receive(data as HostToPanel));
updateButtons();
host.post({ type: 'ready' });
