/** `design-to-code models`: being written (see the open issues); replaced by its real module. */
export async function runModels(_argv: string[]): Promise<number> {
  process.stderr.write('design-to-code models: not available in this build yet\n');
  return 1;
}
