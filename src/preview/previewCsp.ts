/** What the preview's page adds to the strict webview CSP, and why. */
import type { CspAdditions } from '../panel/webviewPage';

export function previewCspAdditions(pageServerOrigins: string[]): CspAdditions {
  return {
    // Generated pages carry inline styles (a srcdoc frame inherits this policy), and so
    // does the diagram viewer's output. Scripts stay nonce-only.
    'style-src': ["'unsafe-inline'"],
    // The page server's frame, only while pages may run their scripts.
    'frame-src': pageServerOrigins,
  };
}
