/**
 * `design-to-code`: the command line. Each subcommand lives in its own module under
 * ./commands; this file only dispatches and turns failures into a message and an exit code.
 */
import { runBuild } from './commands/build';
import { runGenerate } from './commands/generate';
import { runModels } from './commands/models';
import { runServe } from './commands/serve';

const USAGE = `Usage: design-to-code <command> [options]

Commands:
  generate   run the model once on a chat (messages JSON file) and print the reply
  serve      start the OpenAI-compatible HTTP server on loopback
  models     list, pull or remove cached models (models list|pull|rm)
  build      build a checkpoint's ONNX model into the cache ahead of the first start

Run "design-to-code <command> --help" for a command's options.`;

const COMMANDS: Record<string, (argv: string[]) => Promise<number>> = {
  generate: runGenerate,
  serve: runServe,
  models: runModels,
  build: runBuild,
};

async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (!name || name === '--help' || name === '-h') {
    process.stdout.write(USAGE + '\n');
    return name ? 0 : 2;
  }
  const command = COMMANDS[name];
  if (!command) {
    process.stderr.write(`design-to-code: unknown command "${name}"\n\n${USAGE}\n`);
    return 2;
  }
  return command(rest);
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (error: unknown) => {
    process.stderr.write(
      `design-to-code: ${error instanceof Error ? error.message : String(error)}\n`,
    );
    process.exitCode = 1;
  },
);
