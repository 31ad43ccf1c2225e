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
    onMessage: (listener) => window.addEventListener('message', (event) => listener(event.data)),
  };
}
