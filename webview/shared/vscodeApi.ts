/** The typed channel from a webview to its extension host (VS Code's acquireVsCodeApi). */

interface VsCodeApi {
  postMessage(message: unknown): void;
  getState(): unknown;
  setState(state: unknown): void;
}

declare function acquireVsCodeApi(): VsCodeApi;

export interface HostChannel<Out, State> {
  post(message: Out): void;
  state(): Partial<State>;
  saveState(state: State): void;
  /** Listens for messages from the host. */
  onMessage(listener: (message: unknown) => void): void;
}

/** acquireVsCodeApi may be called once per page load, so this is the only caller. */
export function connectToHost<Out, State>(): HostChannel<Out, State> {
  const api = acquireVsCodeApi();
  return {
    post: (message) => api.postMessage(message),
    state: () => (api.getState() ?? {}) as Partial<State>,
    saveState: (state) => api.setState(state),
    onMessage: (listener) =>
      window.addEventListener('message', (event) => {
        // Only the host speaks this protocol; a page rendered in one of our frames (the
        // preview's) can post to its parent too, and must not drive the view.
        if (event.source !== null && isChildFrame(event.source)) return;
        listener(event.data);
      }),
  };
}

function isChildFrame(source: MessageEventSource): boolean {
  for (let index = 0; index < window.frames.length; index++) {
    if (window.frames[index] === source) return true;
  }
  return false;
}
