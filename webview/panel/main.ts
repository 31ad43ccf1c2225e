// Panel UI entry point (written by the webview work).
