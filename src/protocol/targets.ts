/** What the user can ask the model to produce. Shared by the extension and the webviews. */
export const TARGETS = {
  html: { label: 'HTML + CSS (single file)', languageId: 'html', extension: 'html' },
  tailwind: { label: 'HTML + Tailwind', languageId: 'html', extension: 'html' },
  react: { label: 'React component (JSX)', languageId: 'javascriptreact', extension: 'jsx' },
  drawio: { label: 'Draw.io diagram (XML)', languageId: 'xml', extension: 'drawio' },
} as const;

export type Target = keyof typeof TARGETS;

export function isTarget(value: unknown): value is Target {
  return typeof value === 'string' && Object.prototype.hasOwnProperty.call(TARGETS, value);
}
