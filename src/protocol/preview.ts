/**
 * Messages between the live preview webview and the extension host. Types only (plus the
 * validators in ./validate.ts), imported by both sides so that a message cannot drift.
 */

/** What the preview shows; the host decides the kind from the document. */
export type PreviewContent =
  /** HTML rendered in a sandboxed `srcdoc` frame with scripts off. */
  | { kind: 'html'; html: string }
  /** HTML served by the loopback page server (scripts allowed); `revision` forces a reload. */
  | { kind: 'served'; url: string; revision: number }
  /** Draw.io XML rendered by draw.io's own offline viewer. */
  | { kind: 'drawio'; xml: string }
  /** Nothing to render, and why. */
  | { kind: 'empty'; message: string };

/** The image a document was generated from, for the side-by-side or overlay comparison. */
export interface PreviewImage {
  name: string;
  dataUrl: string;
}

export type HostToPreview =
  | { type: 'render'; title: string; content: PreviewContent }
  | { type: 'sourceImage'; image: PreviewImage | null };

export type PreviewToHost =
  | { type: 'ready' }
  /** The webview could not render the content (e.g. the diagram XML does not parse). */
  | { type: 'renderFailed'; message: string };
