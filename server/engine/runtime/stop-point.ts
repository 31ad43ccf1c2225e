/**
 * Where a long piece of work (a prompt in chunks, the vision tower in stages) may stop between
 * two onnxruntime runs. onnxruntime-node runs a session on the main thread, so a Stop (a closed
 * socket, a timer) is only seen once the event loop turns, which it need not do between two
 * runs: this turns it, then says whether `signal` was aborted.
 */
export async function stopRequested(signal: AbortSignal | undefined): Promise<boolean> {
  if (!signal) return false;
  await new Promise((resolve) => setImmediate(resolve));
  return signal.aborted;
}
