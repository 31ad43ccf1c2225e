/** `design-to-code generate`: being written (see the open issues); replaced by its real module. */
export async function runGenerate(_argv: string[]): Promise<number> {
  process.stderr.write('design-to-code generate: not available in this build yet\n');
  return 1;
}
