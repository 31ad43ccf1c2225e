/**
 * Owns the local server's life: starts it on first use (never on activation), waits for its
 * ready line, shows its progress lines as VS Code progress, sends its stderr to the log,
 * restarts it with backoff after a crash (bounded), never after a deliberate stop, and ends
 * the process tree when stopped or when the extension deactivates.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { constants, setPriority } from 'node:os';
import * as vscode from 'vscode';
import type { ProgressStage } from '../protocol/panel';
import type { Settings } from '../settings/schema';
import { Disposable } from '../util/disposable';
import { IdleTimer, type Hold } from './idleTimer';
import { killTree } from './processTree';
import { resolveServerCommand, serveArguments, type ServerCommand } from './resolveServer';
import { RestartPolicy, type RestartPolicyOptions } from './restartPolicy';
import { describeProgress, LineSplitter, parseServerLine, toProgressStage } from './serverEvents';

export type ServerState = 'stopped' | 'starting' | 'ready' | 'restarting' | 'failed';

export interface ServerConnection {
  endpoint: string;
  token: string;
  device: string;
  model: string;
}

export interface CrashReport {
  code: number | null;
  signal: NodeJS.Signals | null;
  willRestart: boolean;
}

export interface SupervisorOptions {
  extensionPath: string;
  log: vscode.LogOutputChannel;
  settings: () => Settings;
  workspaceFolder?: () => string | undefined;
  /** How long the server may stay silent on stdout before the start counts as failed. */
  startTimeoutMs?: number;
  /** How long a stopped server may take to exit before it is killed (STOP_GRACE_MS). */
  graceMs?: number;
  restartPolicy?: RestartPolicyOptions;
}

/**
 * A server told to stop saves the conversation it holds for the next one (on the CPU a few
 * hundred MB: 1.6 s for 3,000 tokens on a slow VM disk) and exits; one that has not exited by
 * then is killed. A server that ignores the signal costs this wait once.
 */
export const STOP_GRACE_MS = 10_000;

export class ServerStartError extends Error {
  constructor(
    message: string,
    readonly kind: 'notFound' | 'exited' | 'timeout' | 'stopped',
  ) {
    super(message);
    this.name = 'ServerStartError';
  }
}

export class ServerSupervisor extends Disposable {
  private child: ChildProcess | undefined;
  private connection: ServerConnection | undefined;
  private starting: Promise<ServerConnection> | undefined;
  /** The start in progress is a prestart (offline, quiet). */
  private prestarting = false;
  /** The user stopped the server (its command): it waits for a request to start again. */
  private stoppedByUser = false;
  private deliberateStop = false;
  private restartTimer: NodeJS.Timeout | undefined;
  private readonly policy: RestartPolicy;
  private currentState: ServerState = 'stopped';
  private lastProgress: ProgressStage | undefined;
  private readonly progressListeners = new Set<(progress: ProgressStage) => void>();

  private readonly stateEmitter = this.register(new vscode.EventEmitter<ServerState>());
  private readonly crashEmitter = this.register(new vscode.EventEmitter<CrashReport>());
  readonly onDidChangeState = this.stateEmitter.event;
  /** Fires when the server exits without being asked to (a request in flight has failed). */
  readonly onDidCrash = this.crashEmitter.event;
  /** How many times the server came back after a crash since activation. */
  restarts = 0;
  private recovering = false;
  /** The last stop was the idle unload (the status bar says so). */
  unloadedIdle = false;
  /** Unloads the model once nothing has used it for designToCode.unloadAfterMinutes. */
  private readonly idle = new IdleTimer(
    () => this.options.settings().unloadAfterMinutes * 60_000,
    () => this.unloadIdle(),
  );

  constructor(private readonly options: SupervisorOptions) {
    super();
    this.policy = new RestartPolicy(options.restartPolicy);
    this.register({ dispose: () => void this.stop() });
    this.register({ dispose: () => this.idle.cancel() });
  }

  get state(): ServerState {
    return this.currentState;
  }
  get info(): ServerConnection | undefined {
    return this.connection;
  }
  get pid(): number | undefined {
    return this.child?.pid;
  }

  private setState(state: ServerState): void {
    if (state === this.currentState) return;
    this.currentState = state;
    if (state === 'ready') this.idle.start();
    else this.idle.cancel();
    this.stateEmitter.fire(state);
  }

  /** Keeps the model loaded until disposed: a generation or a read-ahead is using it. */
  hold(): Hold {
    return this.idle.hold();
  }

  private unloadIdle(): void {
    const minutes = this.options.settings().unloadAfterMinutes;
    this.options.log.info(
      `Unloading the model: unused for ${minutes} min (designToCode.unloadAfterMinutes). ` +
        'It loads again when the panel comes forward, an image is chosen or a generation starts.',
    );
    this.unloadedIdle = true;
    void this.stop();
  }

  /**
   * The running server's connection, starting it first when needed. `onProgress` hears the
   * start-up stages (download, build, load) for as long as this call waits.
   */
  async ensureStarted(onProgress?: (progress: ProgressStage) => void): Promise<ServerConnection> {
    if (this.connection && this.child) return this.connection;
    this.stoppedByUser = false;
    if (onProgress) {
      this.progressListeners.add(onProgress);
      onProgress(this.lastProgress ?? { stage: 'startingServer' });
    }
    try {
      // A prestart that cannot finish offline gives way to this start, which may download.
      if (this.starting && this.prestarting) await this.starting.catch(() => undefined);
      if (this.connection && this.child) return this.connection;
      if (!this.starting) {
        clearTimeout(this.restartTimer);
        this.starting = this.startWithProgress().finally(() => (this.starting = undefined));
      }
      return await this.starting;
    } finally {
      if (onProgress) this.progressListeners.delete(onProgress);
    }
  }

  /**
   * Starts the server before its first request (an image was chosen in the panel) when that
   * needs no download (`serve --offline`) and the user has not stopped it. Progress shows in the
   * status bar only; a start that fails (the model is not downloaded yet) is logged and leaves
   * the server stopped, for the request to start it as usual. Resolves once it is settled.
   */
  async prestart(): Promise<void> {
    if (this.currentState !== 'stopped' || this.stoppedByUser) return;
    if (!this.starting) {
      clearTimeout(this.restartTimer);
      this.prestarting = true;
      this.starting = this.startWithProgress(true).finally(() => {
        this.starting = undefined;
        this.prestarting = false;
      });
    }
    await this.starting.catch(() => undefined);
  }

  /** A prestart, only where the model was unloaded while idle (see GenerationApi.expectUse). */
  async reloadIfUnloaded(): Promise<void> {
    if (this.unloadedIdle) await this.prestart();
  }

  private startWithProgress(prestart = false): Promise<ServerConnection> {
    return Promise.resolve(
      vscode.window.withProgress(
        {
          location: prestart
            ? vscode.ProgressLocation.Window
            : vscode.ProgressLocation.Notification,
          title: 'Design to Code',
          cancellable: false,
        },
        (progress) => {
          progress.report({ message: 'Starting the local model server…' });
          let lastPercent = 0;
          return this.spawnServer(prestart, (event) => {
            const stage = toProgressStage(event);
            this.lastProgress = stage;
            for (const listener of this.progressListeners) listener(stage);
            const percent = ('percent' in stage ? stage.percent : undefined) ?? 0;
            const increment = percent >= lastPercent ? percent - lastPercent : undefined;
            lastPercent = percent;
            progress.report({ message: describeProgress(event), increment });
          });
        },
      ),
    );
  }

  private resolveCommand(settings: Settings, offline: boolean): ServerCommand {
    try {
      return resolveServerCommand(
        {
          environmentOverride: process.env['DESIGN_TO_CODE_SERVER'],
          settingPath: settings.serverPath,
          extensionPath: this.options.extensionPath,
          workspaceFolder: this.options.workspaceFolder?.(),
          execPath: process.execPath,
        },
        serveArguments(settings, offline),
      );
    } catch (error) {
      throw new ServerStartError(
        error instanceof Error ? error.message : String(error),
        'notFound',
      );
    }
  }

  /** `prestart`: offline, and a failure leaves the server stopped (see prestart). */
  private spawnServer(
    prestart: boolean,
    onProgress: (event: import('./serverEvents').ProgressEvent) => void,
  ): Promise<ServerConnection> {
    const log = this.options.log;
    this.deliberateStop = false;
    this.lastProgress = undefined;
    this.unloadedIdle = false;
    this.setState('starting');
    let command: ServerCommand;
    try {
      command = this.resolveCommand(this.options.settings(), prestart);
    } catch (error) {
      this.setState(prestart ? 'stopped' : 'failed');
      return Promise.reject(error);
    }
    const token = randomBytes(24).toString('hex');
    log.info(`Starting ${command.source} server: ${command.command} ${command.args.join(' ')}`);
    const child = spawn(command.command, command.args, {
      env: { ...process.env, ...command.env, DESIGN_TO_CODE_TOKEN: token },
      stdio: ['pipe', 'pipe', 'pipe'],
      detached: process.platform !== 'win32',
      windowsHide: true,
    });
    this.child = child;
    lowerPriority(child, log);

    return new Promise<ServerConnection>((resolve, reject) => {
      let settled = false;
      /** It started: a later exit is a crash (a failed start exits too, and was reported). */
      let ready = false;
      const timeoutMs = this.options.startTimeoutMs ?? 180_000;
      let timer: NodeJS.Timeout | undefined;
      const armTimer = () => {
        clearTimeout(timer);
        timer = setTimeout(() => {
          fail(
            new ServerStartError(
              `The local server said nothing for ${timeoutMs / 1000} s while starting.`,
              'timeout',
            ),
          );
          void killTree(child, this.options.graceMs ?? STOP_GRACE_MS);
        }, timeoutMs);
      };
      const fail = (error: ServerStartError) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        if (prestart) {
          this.setState('stopped');
          log.info(`Starting ahead of the first request did not work: ${error.message}`);
        } else {
          this.setState('failed');
          log.error(error.message);
        }
        reject(error);
      };
      armTimer();

      const stdout = new LineSplitter();
      child.stdout!.setEncoding('utf8').on('data', (chunk: string) => {
        for (const line of stdout.push(chunk)) {
          const event = parseServerLine(line);
          if (!event) {
            if (line.trim()) log.info(`[server stdout] ${line}`);
            continue;
          }
          if (event.event === 'progress') {
            armTimer();
            onProgress(event);
            continue;
          }
          if (event.event === 'error') {
            const action =
              event.code.startsWith('hub') || /download/i.test(event.message)
                ? 'download'
                : 'start';
            fail(
              new ServerStartError(
                `The local server could not ${action} the model: ${event.message}`,
                'exited',
              ),
            );
            continue;
          }
          if (settled) continue;
          settled = true;
          ready = true;
          clearTimeout(timer);
          this.connection = {
            endpoint: `http://127.0.0.1:${event.port}/v1`,
            token,
            device: event.device,
            model: event.model,
          };
          log.info(
            `Server ready on port ${event.port} (device ${event.device}, model ${event.model}).`,
          );
          if (this.recovering) {
            this.recovering = false;
            this.restarts++;
          }
          this.setState('ready');
          resolve(this.connection);
        }
      });
      const stderr = new LineSplitter();
      child.stderr!.setEncoding('utf8').on('data', (chunk: string) => {
        for (const line of stderr.push(chunk)) if (line.trim()) log.info(line);
      });
      child.on('error', (error) => {
        fail(
          new ServerStartError(`Could not start the local server (${error.message}).`, 'exited'),
        );
      });
      child.on('exit', (code, signal) => {
        for (const line of stderr.flush()) log.info(line);
        if (this.child === child) {
          this.child = undefined;
          this.connection = undefined;
        }
        log.info(`Server exited (code ${code ?? '-'}, signal ${signal ?? '-'}).`);
        if (!settled) {
          fail(
            new ServerStartError(
              this.deliberateStop
                ? 'The local server was stopped while starting.'
                : `The local server exited while starting (code ${code ?? '-'}${signal ? `, signal ${signal}` : ''}). See the log.`,
              this.deliberateStop ? 'stopped' : 'exited',
            ),
          );
          return;
        }
        if (this.deliberateStop || this.isDisposed) {
          this.setState('stopped');
          return;
        }
        if (ready) this.onCrash(code, signal);
      });
    });
  }

  private onCrash(code: number | null, signal: NodeJS.Signals | null): void {
    const decision = this.policy.onCrash(Date.now());
    this.crashEmitter.fire({ code, signal, willRestart: decision.restart });
    const how = `code ${code ?? '-'}${signal ? `, signal ${signal}` : ''}`;
    if (!decision.restart) {
      this.setState('failed');
      this.options.log.error(
        `The server crashed ${decision.crashes} times in a short time; not restarting it.`,
      );
      void vscode.window
        .showErrorMessage(
          `The Design to Code server crashed ${decision.crashes} times in a few minutes (last: ${how}); it will not be restarted automatically.`,
          'Show Log',
          'Restart Server',
        )
        .then((choice) => {
          if (choice === 'Show Log') this.options.log.show();
          if (choice === 'Restart Server') void this.restart();
        });
      return;
    }
    this.setState('restarting');
    this.options.log.warn(
      `The server stopped unexpectedly (${how}); restarting in ${decision.delayMs} ms.`,
    );
    this.recovering = true;
    this.restartTimer = setTimeout(() => {
      if (this.deliberateStop || this.isDisposed) return;
      this.ensureStarted()
        .then(() => {
          void vscode.window
            .showWarningMessage(
              `The Design to Code server stopped unexpectedly (${how}) and was restarted.`,
              'Show Log',
            )
            .then((choice) => choice && this.options.log.show());
        })
        .catch((error: unknown) => {
          void vscode.window
            .showErrorMessage(
              `The Design to Code server stopped unexpectedly and could not be restarted: ${error instanceof Error ? error.message : String(error)}`,
              'Show Log',
            )
            .then((choice) => choice && this.options.log.show());
        });
    }, decision.delayMs);
  }

  /**
   * Whether the server crashed, waiting up to `ms` for its exit to be reported: a request can
   * fail on the dropped connection a moment before the process's exit arrives.
   */
  crashedWithin(ms: number): Promise<boolean> {
    if (this.currentState === 'restarting') return Promise.resolve(true);
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        subscription.dispose();
        resolve(false);
      }, ms);
      const subscription = this.onDidCrash(() => {
        clearTimeout(timer);
        subscription.dispose();
        resolve(true);
      });
    });
  }

  /**
   * A deliberate stop: no restart follows. `byUser` (the Stop Server command): nor a prestart,
   * until a request starts it again.
   */
  async stop(options: { byUser?: boolean } = {}): Promise<void> {
    this.deliberateStop = true;
    if (options.byUser) this.stoppedByUser = true;
    this.recovering = false;
    clearTimeout(this.restartTimer);
    const child = this.child;
    this.connection = undefined;
    if (child) await killTree(child, this.options.graceMs ?? STOP_GRACE_MS);
    this.child = undefined;
    if (!this.isDisposed) this.setState('stopped');
  }

  async restart(): Promise<ServerConnection> {
    await this.stop();
    this.policy.reset();
    return this.ensureStarted();
  }
}

/**
 * Below normal priority: on a CPU the model takes every core for seconds at a time (a
 * screenshot's vision tower, a prompt read ahead while the user types), and the editor comes
 * first. With nothing else to run, the server still gets every core. Set right after the spawn,
 * before the server loads the model: the threads that run it inherit it.
 */
function lowerPriority(child: ChildProcess, log: vscode.LogOutputChannel): void {
  if (child.pid === undefined) return; // the spawn failed: its error event reports it
  try {
    setPriority(child.pid, constants.priority.PRIORITY_BELOW_NORMAL);
  } catch (error) {
    log.warn(`Could not lower the server's priority: ${(error as Error).message}`);
  }
}
