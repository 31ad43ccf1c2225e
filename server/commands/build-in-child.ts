/**
 * Runs `design-to-code build --json` in a child process and relays its progress. The build is
 * synchronous for minutes; in a child, the caller's event loop keeps serving signals, its stdin
 * watch and /health, and an abort kills the build at once (the cache discards a partial build).
 */
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import type { BuildProgress, DeviceRequest, Precision } from '../engine/contracts';
import { EngineError, type EngineErrorCode } from '../engine/errors';

export interface ChildBuildOptions {
  modelDir: string;
  device: DeviceRequest;
  precision?: Precision;
  graphCapture?: { capacity: number };
  signal: AbortSignal;
  onProgress: (progress: BuildProgress) => void;
  /** Told the child's pid once it runs. */
  onStart?: (pid: number) => void;
}

/** Resolves once the build is in the cache; rejects with the child's error, or on abort. */
export function buildInChild(options: ChildBuildOptions): Promise<void> {
  const args = [
    ...cliEntry(),
    'build',
    '--json',
    // serve may be killed outright (SIGKILL): the build must not go on without it.
    '--parent',
    String(process.pid),
    '--model',
    options.modelDir,
    '--device',
    options.device,
    ...(options.precision ? ['--precision', options.precision] : []),
    ...(options.graphCapture ? ['--graph-capture', String(options.graphCapture.capacity)] : []),
  ];
  return new Promise((resolve, reject) => {
    options.signal.throwIfAborted();
    const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'inherit'] });
    let failure: Error | undefined;
    let built = false;
    const kill = () => child.kill('SIGKILL');
    options.signal.addEventListener('abort', kill, { once: true });
    if (child.pid !== undefined) options.onStart?.(child.pid);
    createInterface({ input: child.stdout }).on('line', (line) => {
      let event: Record<string, unknown>;
      try {
        event = JSON.parse(line);
      } catch {
        return; // not an event line: nothing to relay
      }
      if (event.event === 'progress') {
        const { event: _, ...progress } = event;
        options.onProgress(progress as unknown as BuildProgress);
      } else if (event.event === 'built') {
        built = true;
      } else if (event.event === 'error') {
        failure = new EngineError(event.code as EngineErrorCode, String(event.message));
      }
    });
    child.on('error', (error) => {
      failure ??= new EngineError(
        'internal',
        `Cannot start the model build (${process.execPath} ${args.join(' ')}): ${error.message}`,
        { cause: error },
      );
      // A child that never started emits no 'close'.
      if (child.pid === undefined) reject(failure);
    });
    child.on('close', (code, signal) => {
      options.signal.removeEventListener('abort', kill);
      if (options.signal.aborted) reject(options.signal.reason);
      else if (failure) reject(failure);
      else if (code === 0 && built) resolve();
      else {
        reject(
          new EngineError(
            'internal',
            `The model build ended without finishing (${signal ? `signal ${signal}` : `exit code ${code}`}); its messages are in the log above.`,
          ),
        );
      }
    });
  });
}

/**
 * How to run this same CLI again: the script it was started as (dist/cli.js, or the TypeScript
 * entry under a loader such as tsx, which the flags in execArgv bring along). Debugger flags
 * are left out: the child would fight the parent for the inspector port.
 */
function cliEntry(): string[] {
  const script = process.argv[1];
  if (!script) {
    throw new EngineError('internal', 'Cannot tell which script to run the model build with.');
  }
  return [...process.execArgv.filter((flag) => !flag.startsWith('--inspect')), script];
}
