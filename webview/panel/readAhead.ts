/**
 * What Generate or Refine would send, posted to the host ahead of the click for the local server
 * to read into its KV cache (GenerationApi.readAhead): when the button is pressed the server then
 * has all but the last token of the prompt. Each change waits for a short pause, so that typing,
 * stepping through the targets or pasting again right away sends only where the user settled
 * (a read-ahead in flight is not stopped for one of the same image, and a screenshot's vision
 * tower on a CPU runs for seconds). Each request is sent once; a started request cancels what is
 * pending.
 */
import type { NextRequest } from '../../src/protocol/panel';

export const READ_AHEAD_PAUSE_MS = 400;

export interface ReadAhead {
  /** The request the panel would send now changed (undefined: none could start). */
  changed(next: NextRequest | undefined): void;
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
    changed(next) {
      stopTimer();
      if (!next) return;
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
