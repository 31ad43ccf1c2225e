/** `design-to-code serve`: being written (see the open issues); replaced by its real module. */
export async function runServe(_argv: string[]): Promise<number> {
  process.stderr.write('design-to-code serve: not available in this build yet\n');
  return 1;
}
