/**
 * The refinement being typed, sent to the host once the typing pauses, for the local server to
 * read ahead (GenerationApi.readAhead): when Refine is pressed the server then has all but the
 * last token in its KV cache. Each pause sends the text once; a started request cancels it.
 */
export const READ_AHEAD_PAUSE_MS = 400;

export interface ReadAhead {
  /** The instruction box changed; `allowed`: a refinement could start now. */
  typed(instruction: string, allowed: boolean): void;
  /** A request starts: nothing pending is sent, and the next pause sends again. */
  cancel(): void;
}

export function readAheadOnPause(
  send: (instruction: string) => void,
  pauseMs = READ_AHEAD_PAUSE_MS,
): ReadAhead {
  let timer: ReturnType<typeof setTimeout> | undefined;
  let sent = '';
  const cancel = () => {
    clearTimeout(timer);
    timer = undefined;
  };
  return {
    typed(instruction, allowed) {
      cancel();
      const text = instruction.trim();
      if (!allowed || !text || text === sent) return;
      timer = setTimeout(() => {
        timer = undefined;
        sent = text;
        send(text);
      }, pauseMs);
    },
    cancel() {
      cancel();
      sent = '';
    },
  };
}
