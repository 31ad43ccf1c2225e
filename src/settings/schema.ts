/**
 * The extension's settings (section "designToCode") as one typed object with defaults.
 * Free of `vscode`: the reader takes a getter, so it is tested alone. Keep in step with
 * package.json contributes.configuration.
 */
import { isTarget, type Target } from '../protocol/targets';

export type Backend = 'local' | 'openai-compatible';
export type InsertMode = 'new-document' | 'cursor' | 'replace-selection';
export type Device = 'auto' | 'cpu' | 'cuda' | 'webgpu' | 'dml' | 'coreml';
export type Precision = 'auto' | 'fp32' | 'fp16' | 'int4';
/** How many pixels the local server keeps of an image (IMAGE_DETAIL_PIXELS). */
export type ImageDetail = 'low' | 'standard' | 'high';

/**
 * Each image detail as the local server's `--max-image-pixels` (32x32 pixels make one visual
 * token): 640 tokens (a 1280x800 screenshot becomes 1024x640), the server's default of 1600
 * (1280x800 stays, 1920x1080 becomes 1696x960), or the checkpoint's own bound (16.7 MP: a 4K
 * screenshot whole, 8160 tokens). On a CPU the vision tower's time grows faster than the tokens.
 */
export const IMAGE_DETAIL_PIXELS: Record<ImageDetail, string | undefined> = {
  low: String(640 * 32 * 32),
  standard: undefined,
  high: 'none',
};

export interface Settings {
  backend: Backend;
  endpoint: string;
  model: string;
  serverPath: string;
  device: Device;
  precision: Precision;
  imageDetail: ImageDetail;
  maxTokens: number;
  temperature: number;
  topP: number;
  defaultTarget: Target;
  insertMode: InsertMode;
  previewAutoOpen: boolean;
  previewAllowScripts: boolean;
  /** The local server reads Generate's and Refine's prompts while they are being set up. */
  readAhead: boolean;
  /** The local server stops after this many minutes unused, freeing the model's memory (0: never). */
  unloadAfterMinutes: number;
}

export const DEFAULT_LOCAL_MODEL = 'Qwen/Qwen3-VL-2B-Instruct';

export const DEFAULTS: Settings = {
  backend: 'local',
  endpoint: 'http://127.0.0.1:8000/v1',
  model: DEFAULT_LOCAL_MODEL,
  serverPath: '',
  device: 'auto',
  precision: 'auto',
  imageDetail: 'standard',
  maxTokens: 4096,
  temperature: 0.2,
  topP: 0.9,
  defaultTarget: 'html',
  insertMode: 'new-document',
  previewAutoOpen: true,
  previewAllowScripts: false,
  readAhead: true,
  unloadAfterMinutes: 15,
};

/** Settings whose change only takes effect once the local server restarts. */
export const RESTART_SETTINGS: readonly (keyof Settings)[] = [
  'model',
  'serverPath',
  'device',
  'precision',
  'imageDetail',
];

export function needsServerRestart(changed: (key: keyof Settings) => boolean): boolean {
  return RESTART_SETTINGS.some((key) => changed(key));
}

/**
 * What a settings change means for a local server that runs (or is starting): switching to a
 * remote endpoint frees the model's memory by stopping it; a changed model, device, precision
 * or image detail only applies after a restart.
 */
export type ServerReaction = 'none' | 'stop' | 'offerRestart';

export function serverReaction(
  changed: (key: keyof Settings) => boolean,
  backend: Backend,
  serverRunning: boolean,
): ServerReaction {
  if (!serverRunning) return 'none';
  if (backend !== 'local') return changed('backend') ? 'stop' : 'none';
  return needsServerRestart(changed) ? 'offerRestart' : 'none';
}

function oneOf<T extends string>(value: unknown, allowed: readonly T[], fallback: T): T {
  return typeof value === 'string' && (allowed as readonly string[]).includes(value)
    ? (value as T)
    : fallback;
}

function numberIn(value: unknown, min: number, max: number, fallback: number): number {
  return typeof value === 'number' && Number.isFinite(value) && value >= min && value <= max
    ? value
    : fallback;
}

function text(value: unknown, fallback: string): string {
  return typeof value === 'string' && value.trim() !== '' ? value.trim() : fallback;
}

function flag(value: unknown, fallback: boolean): boolean {
  return typeof value === 'boolean' ? value : fallback;
}

/** Reads every setting through `get`, falling back to the default for missing or bad values. */
export function readSettings(get: (key: keyof Settings) => unknown): Settings {
  const target = get('defaultTarget');
  return {
    backend: oneOf(get('backend'), ['local', 'openai-compatible'], DEFAULTS.backend),
    endpoint: text(get('endpoint'), DEFAULTS.endpoint),
    model: text(get('model'), DEFAULTS.model),
    serverPath: text(get('serverPath'), ''),
    device: oneOf(
      get('device'),
      ['auto', 'cpu', 'cuda', 'webgpu', 'dml', 'coreml'],
      DEFAULTS.device,
    ),
    precision: oneOf(get('precision'), ['auto', 'fp32', 'fp16', 'int4'], DEFAULTS.precision),
    imageDetail: oneOf(get('imageDetail'), ['low', 'standard', 'high'], DEFAULTS.imageDetail),
    maxTokens: Math.round(numberIn(get('maxTokens'), 1, 131072, DEFAULTS.maxTokens)),
    temperature: numberIn(get('temperature'), 0, 2, DEFAULTS.temperature),
    topP: numberIn(get('topP'), 0, 1, DEFAULTS.topP),
    defaultTarget: isTarget(target) ? target : DEFAULTS.defaultTarget,
    insertMode: oneOf(
      get('insertMode'),
      ['new-document', 'cursor', 'replace-selection'],
      DEFAULTS.insertMode,
    ),
    previewAutoOpen: flag(get('previewAutoOpen'), DEFAULTS.previewAutoOpen),
    previewAllowScripts: flag(get('previewAllowScripts'), DEFAULTS.previewAllowScripts),
    readAhead: flag(get('readAhead'), DEFAULTS.readAhead),
    unloadAfterMinutes: numberIn(get('unloadAfterMinutes'), 0, 1440, DEFAULTS.unloadAfterMinutes),
  };
}
