/**
 * What Generate or Refine would send, posted to the host ahead of the click for the local server
 * to read into its KV cache (GenerationApi.readAhead): when the button is pressed the server then
 * has all but the last token of the prompt. A change from typing waits for a pause; a new image
 * or target goes at once. Each request is sent once; a started request cancels what is pending.
 */
import type { NextRequest } from '../../src/protocol/panel';

export const READ_AHEAD_PAUSE_MS = 400;

export interface ReadAhead {
  /**
   * The request the panel would send now changed (undefined: none could start). `typing`: wait
   * for a pause in the typing before sending it.
   */
  changed(next: NextRequest | undefined, typing: boolean): void;
  /** A request starts, or the image changed: nothing pending is sent, and anything may go again. */
  cancel(): void;
}

export function readAheadOnPause(
  send: (next: NextRequest) => void,
  pauseMs = READ_AHEAD_PAUSE_MS,
): ReadAhead {
  let timer: ReturnType<typeof setTimeout> | undefined;
  let sent = '';
  const stopTimer = () => {
    clearTimeout(timer);
    timer = undefined;
  };
  const sendOnce = (next: NextRequest) => {
    const key = JSON.stringify(next);
    if (key === sent) return;
    sent = key;
    send(next);
  };
  return {
    changed(next, typing) {
      stopTimer();
      if (!next) return;
      if (!typing) return sendOnce(next);
      timer = setTimeout(() => {
        timer = undefined;
        sendOnce(next);
      }, pauseMs);
    },
    cancel() {
      stopTimer();
      sent = '';
    },
  };
}
