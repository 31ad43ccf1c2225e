/**
 * Runtime validators for every message that arrives from a webview. A webview is untrusted
 * input: the host checks each message against these schemas before it touches anything.
 * The schemas are checked against the protocol types at compile time, so they cannot drift.
 */
import { z } from 'zod';
import type { PanelToHost, ErrorAction } from './panel';
import { IMAGE_MIME_TYPES, MAX_IMAGE_BYTES, MAX_INSTRUCTION_CHARS } from './panel';
import type { PreviewToHost } from './preview';
import { TARGETS, type Target } from './targets';

export type Validation<T> = { ok: true; value: T } | { ok: false; error: string };

const MAX_BASE64_CHARS = Math.ceil(MAX_IMAGE_BYTES / 3) * 4;
// A record, so that adding an ErrorAction without listing it here fails to compile.
const ERROR_ACTIONS: Record<ErrorAction, true> = {
  downloadModel: true,
  chooseModel: true,
  showLog: true,
  openSettings: true,
  startServer: true,
  restartServer: true,
  setApiKey: true,
};

const id = z.string().min(1).max(128);
function keys<K extends string>(record: Record<K, unknown>): [K, ...K[]] {
  return Object.keys(record) as [K, ...K[]];
}

const target = z.enum(keys<Target>(TARGETS));
const instruction = z.string().max(MAX_INSTRUCTION_CHARS);
const image = z.strictObject({
  name: z.string().max(512),
  mimeType: z.enum(IMAGE_MIME_TYPES),
  base64: z
    .string()
    .min(1)
    .max(MAX_BASE64_CHARS, `the image is larger than ${MAX_IMAGE_BYTES / 1024 / 1024} MB`)
    .regex(/^[A-Za-z0-9+/]*={0,2}$/, 'the image is not base64'),
});

const panelMessage = z.discriminatedUnion('type', [
  z.strictObject({ type: z.literal('ready') }),
  z.strictObject({ type: z.literal('imageChosen'), image }),
  z.strictObject({ type: z.literal('pickFile') }),
  z.strictObject({ type: z.literal('generate'), requestId: id, image, target, instruction }),
  // Refining without saying how would only repeat the last result.
  z.strictObject({ type: z.literal('refine'), requestId: id, instruction: instruction.min(1) }),
  z.strictObject({
    type: z.literal('readAhead'),
    next: z.discriminatedUnion('kind', [
      z.strictObject({ kind: z.literal('generate'), target, instruction }),
      z.strictObject({ kind: z.literal('refine'), instruction: instruction.min(1) }),
    ]),
  }),
  z.strictObject({ type: z.literal('stop'), requestId: id }),
  z.strictObject({ type: z.literal('useEmbeddedDiagram') }),
  z.strictObject({ type: z.literal('openHistory'), historyId: id }),
  z.strictObject({ type: z.literal('runAction'), action: z.enum(keys(ERROR_ACTIONS)) }),
]);

const previewMessage = z.discriminatedUnion('type', [
  z.strictObject({ type: z.literal('ready') }),
  z.strictObject({ type: z.literal('renderFailed'), message: z.string().max(2000) }),
]);

// Compile-time proof that each schema accepts exactly its protocol type.
type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;
const panelSchemaMatches: Same<z.infer<typeof panelMessage>, PanelToHost> = true;
const previewSchemaMatches: Same<z.infer<typeof previewMessage>, PreviewToHost> = true;
void panelSchemaMatches;
void previewSchemaMatches;

function validate<T>(schema: z.ZodType<T>, data: unknown): Validation<T> {
  const result = schema.safeParse(data);
  return result.success
    ? { ok: true, value: result.data }
    : { ok: false, error: z.prettifyError(result.error) };
}

/** Checks a message from the panel webview. */
export function validatePanelMessage(data: unknown): Validation<PanelToHost> {
  return validate(panelMessage, data);
}

/** Checks a message from the preview webview. */
export function validatePreviewMessage(data: unknown): Validation<PreviewToHost> {
  return validate(previewMessage, data);
}
