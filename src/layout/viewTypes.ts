/** The view types of the extension's two webview panels (also in package.json's activation). */
export const PANEL_VIEW_TYPE = 'designToCode.panel';
export const PREVIEW_VIEW_TYPE = 'designToCode.preview';
