/** `design-to-code models list|pull|rm`: manages the local model cache from the command line. */
import { parseArgs } from 'node:util';
import { formatBytes } from '../hub/disk-space';
import { HubError } from '../hub/errors';
import { rm } from 'node:fs/promises';
import { buildsMadeFrom, defaultCacheDir } from '../engine/runtime/build-cache';
import { folderBytes, listCachedModels, removeCachedModel } from '../hub/model-cache';
import { DEFAULT_MODEL_ID, cacheDirFor, defaultModelsRoot, isHubId } from '../hub/model-ref';
import { throttleProgress } from '../hub/progress-throttle';
import { pullModel } from '../hub/pull-model';
import { connectionFromEnv } from '../hub/remote-files';

const USAGE = `Usage: design-to-code models <command> [options]

Commands:
  list              the cached models, complete or not, with their size
  pull [ORG/NAME]   download a model, or finish an interrupted download (default ${DEFAULT_MODEL_ID})
  rm ORG/NAME       delete a model from the cache, with the ONNX builds made from it

Options:
  --cache-dir D     models cache (default $DESIGN_TO_CODE_MODELS or ~/.cache/design-to-code/models)
  --json            machine-readable output: JSON on stdout (pull: one progress event per line)
  -h, --help        show this help

Set HF_ENDPOINT to use a hub mirror and HF_TOKEN for gated models.`;

export async function runModels(argv: string[]): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: true,
      options: {
        'cache-dir': { type: 'string' },
        json: { type: 'boolean', default: false },
        help: { type: 'boolean', short: 'h', default: false },
      },
    });
  } catch (error) {
    process.stderr.write(`design-to-code models: ${(error as Error).message}\n\n${USAGE}\n`);
    return 2;
  }
  const { values, positionals } = parsed;
  const [command, id, ...extra] = positionals;
  if (values.help || !command) {
    process.stdout.write(USAGE + '\n');
    return values.help ? 0 : 2;
  }
  const root = values['cache-dir'] ?? defaultModelsRoot();
  const usageError = (message: string) => {
    process.stderr.write(`design-to-code models: ${message}\n\n${USAGE}\n`);
    return 2;
  };
  if (extra.length > 0) return usageError(`unexpected arguments: ${extra.join(' ')}`);
  if (id !== undefined && !isHubId(id))
    return usageError(`"${id}" is not a hub id like ${DEFAULT_MODEL_ID}`);

  try {
    switch (command) {
      case 'list':
        return await list(root, values.json);
      case 'pull':
        return await pull(id ?? DEFAULT_MODEL_ID, root, values.json);
      case 'rm':
        if (!id) return usageError('rm needs the model id to delete');
        return await remove(id, root, values.json);
      default:
        return usageError(`unknown command "${command}"`);
    }
  } catch (error) {
    if (!(error instanceof HubError)) throw error;
    if (values.json)
      process.stdout.write(
        JSON.stringify({ event: 'error', code: error.code, message: error.message }) + '\n',
      );
    process.stderr.write(`design-to-code models: ${error.message}\n`);
    return 1;
  }
}

async function list(root: string, json: boolean): Promise<number> {
  const models = await listCachedModels(root);
  if (json) {
    process.stdout.write(JSON.stringify({ root, models }) + '\n');
    return 0;
  }
  if (models.length === 0) {
    process.stdout.write(`No models in ${root}. Download one with "design-to-code models pull".\n`);
    return 0;
  }
  for (const model of models) {
    const state = model.complete ? 'complete' : 'incomplete (run "models pull" to finish)';
    process.stdout.write(`${model.modelId}\t${formatBytes(model.bytes)}\t${state}\t${model.dir}\n`);
  }
  return 0;
}

async function pull(modelId: string, root: string, json: boolean): Promise<number> {
  const controller = new AbortController();
  const stop = () => controller.abort();
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  try {
    const result = await pullModel(modelId, {
      root,
      connection: connectionFromEnv(),
      signal: controller.signal,
      onWaiting: (message) => process.stderr.write(`${message}\n`),
      onProgress: throttleProgress((progress) => {
        if (json) {
          process.stdout.write(
            JSON.stringify({ event: 'progress', stage: 'download', ...progress }) + '\n',
          );
        } else {
          const percent =
            progress.total > 0 ? ((100 * progress.bytes) / progress.total).toFixed(1) : '100.0';
          process.stderr.write(
            `${progress.file}: ${percent}% (${formatBytes(progress.bytes)} of ${formatBytes(progress.total)})\n`,
          );
        }
      }),
    });
    if (json) {
      process.stdout.write(JSON.stringify({ event: 'pulled', modelId, ...result }) + '\n');
    } else {
      const what =
        result.downloaded.length > 0
          ? `downloaded ${result.downloaded.length} files`
          : 'already complete';
      process.stdout.write(`${modelId}@${result.commit.slice(0, 12)}: ${what} in ${result.dir}\n`);
    }
    return 0;
  } finally {
    process.off('SIGINT', stop);
    process.off('SIGTERM', stop);
  }
}

async function remove(modelId: string, root: string, json: boolean): Promise<number> {
  const removed = await removeCachedModel(modelId, root);
  // Its builds are several GB each ($DESIGN_TO_CODE_CACHE), worthless without the checkpoint,
  // and hold the vision outputs kept beside them.
  const builds = buildsMadeFrom(defaultCacheDir(), cacheDirFor(modelId, root));
  let bytes = 0;
  for (const dir of builds) {
    bytes += await folderBytes(dir);
    await rm(dir, { recursive: true, force: true });
  }
  if (json) {
    const event = { event: 'removed', modelId, removed, builds: builds.length, buildBytes: bytes };
    process.stdout.write(JSON.stringify(event) + '\n');
  } else if (removed) {
    const also = builds.length
      ? ` and its ${builds.length} ONNX build(s), ${formatBytes(bytes)}`
      : '';
    process.stdout.write(`Removed ${modelId}${also}\n`);
  } else process.stdout.write(`${modelId} is not in ${root}\n`);
  return removed ? 0 : 1;
}
