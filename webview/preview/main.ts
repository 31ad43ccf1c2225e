// Preview UI entry point (written by the webview work).
