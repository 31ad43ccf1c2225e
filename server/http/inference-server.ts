/**
 * The OpenAI-compatible HTTP server around one Engine. The engine is injected (or a promise of
 * one, so the server can answer "loading" while it loads); this module knows nothing of how
 * the engine works. Every request must name a loopback host and carry the bearer token.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Engine } from '../engine/contracts';
import { ApiError, toApiError } from './api-error';
import { handleChatCompletion, sendJson } from './chat-completions';
import { GenerationQueue } from './generation-queue';
import { ServerMetrics } from './metrics';
import { checkBearer, checkHost } from './request-guard';

export interface ServerLimits {
  /** Largest request body; bigger ones get 413 before they are read. */
  maxBodyBytes: number;
  /** Largest decoded image in a request (pixels are bounded by the engine). */
  maxImageBytes: number;
  maxImages: number;
  /** Requests allowed to wait while one generates; more get 429. */
  maxQueue: number;
  /** Queue wait plus generation; then the generation is stopped (504). */
  requestTimeoutMs: number;
}

export const DEFAULT_LIMITS: ServerLimits = {
  maxBodyBytes: 32 * 1024 * 1024,
  maxImageBytes: 20 * 1024 * 1024,
  maxImages: 8,
  maxQueue: 8,
  requestTimeoutMs: 10 * 60 * 1000,
};

export interface InferenceServerOptions {
  engine: Engine | Promise<Engine>;
  /** Reported while the engine loads (afterwards engine.info.model). */
  modelName: string;
  token: string;
  /** Host names accepted besides the loopback ones (the --host address when not loopback). */
  extraHosts?: string[];
  limits?: Partial<ServerLimits>;
  /** One line of log (stderr in the CLI). */
  log?: (line: string) => void;
}

export type HealthStatus = 'loading' | 'ready' | 'busy' | 'failed';

export class InferenceServer {
  readonly metrics = new ServerMetrics();
  readonly limits: ServerLimits;
  private readonly queue: GenerationQueue;
  private readonly http: Server;
  private readonly shutdown = new AbortController();
  private readonly log: (line: string) => void;
  private engine?: Engine;
  private loadError?: unknown;
  private readonly loading: Promise<void>;

  constructor(private readonly options: InferenceServerOptions) {
    this.limits = { ...DEFAULT_LIMITS, ...options.limits };
    this.log = options.log ?? (() => {});
    this.queue = new GenerationQueue(this.limits.maxQueue, () => {
      this.metrics.queueLength.set(this.queue.length);
      this.metrics.busy.set(this.queue.busy ? 1 : 0);
    });
    this.loading = Promise.resolve(options.engine).then(
      (engine) => {
        this.engine = engine;
      },
      (error: unknown) => {
        this.loadError = error;
        this.log(`model failed to load: ${error instanceof Error ? error.message : String(error)}`);
      },
    );
    this.http = createServer((request, response) => void this.handle(request, response));
  }

  get status(): HealthStatus {
    if (this.loadError) return 'failed';
    if (!this.engine) return 'loading';
    return this.queue.busy ? 'busy' : 'ready';
  }

  /** Resolves once the engine promise settles (check `status` for the outcome). */
  whenLoaded(): Promise<void> {
    return this.loading;
  }

  async listen(port: number, host: string): Promise<AddressInfo> {
    await new Promise<void>((resolve, reject) => {
      this.http.once('error', reject);
      this.http.listen(port, host, () => {
        this.http.off('error', reject);
        resolve();
      });
    });
    return this.http.address() as AddressInfo;
  }

  /**
   * Stops running and waiting generations and closes the connections. The engine stays: whoever
   * made it disposes of it.
   */
  async close(graceMs = 2000): Promise<void> {
    this.shutdown.abort();
    const closed = new Promise<void>((resolve) => this.http.close(() => resolve()));
    // Aborted streams finish within a decode step; their keep-alive sockets then go idle.
    const sweep = setInterval(() => this.http.closeIdleConnections(), 20);
    const force = setTimeout(() => this.http.closeAllConnections(), graceMs);
    await closed;
    clearInterval(sweep);
    clearTimeout(force);
  }

  private async handle(request: IncomingMessage, response: ServerResponse): Promise<void> {
    const route = routeName(request);
    response.on('close', () => {
      const status = response.writableFinished ? String(response.statusCode) : '499';
      // Unknown paths share one label so clients cannot grow the metrics without bound.
      this.metrics.requests.inc({ route: ROUTES.has(route) ? route : 'other', status });
    });
    try {
      checkHost(request.headers.host, this.options.extraHosts);
      checkBearer(request.headers.authorization, this.options.token);
      await this.route(route, request, response);
    } catch (error) {
      const apiError = this.toApiError(error, request);
      if (apiError.status === 499) return; // nobody left to answer
      // An unread body (413) would keep the connection busy: close it after the answer.
      const headers: Record<string, string> =
        apiError.status === 413 ? { connection: 'close' } : {};
      if (apiError.status === 401) headers['www-authenticate'] = 'Bearer';
      if (apiError.status === 503 || apiError.status === 429) headers['retry-after'] = '1';
      sendJson(response, apiError.status, apiError.toJSON(), headers);
    }
  }

  /** Any failure as an ApiError; unexpected ones are logged under the reference they carry. */
  private toApiError(error: unknown, request: IncomingMessage): ApiError {
    return toApiError(error, (reference, cause) =>
      this.log(
        `error ${reference} on ${request.method} ${request.url}: ${
          cause instanceof Error ? (cause.stack ?? cause.message) : String(cause)
        }`,
      ),
    );
  }

  private async route(route: string, request: IncomingMessage, response: ServerResponse) {
    const method = request.method ?? 'GET';
    const allow = (expected: string) => {
      if (method !== expected) {
        throw new ApiError(
          405,
          'invalid_request_error',
          'method_not_allowed',
          `Use ${expected} for ${route}`,
        );
      }
    };
    switch (route) {
      case '/v1/chat/completions':
        allow('POST');
        return handleChatCompletion(request, response, {
          engine: this.requireEngine(),
          queue: this.queue,
          metrics: this.metrics,
          limits: this.limits,
          shutdown: this.shutdown.signal,
          toApiError: (error) => this.toApiError(error, request),
          log: this.log,
        });
      case '/v1/models':
        allow('GET');
        return sendJson(response, 200, {
          object: 'list',
          data: [{ id: this.modelName, object: 'model', created: 0, owned_by: 'design-to-code' }],
        });
      case '/health':
        allow('GET');
        return sendJson(response, 200, {
          status: this.status,
          device: this.engine?.info.device ?? null,
          model: this.modelName,
          queue: this.queue.length,
        });
      case '/metrics':
        allow('GET');
        response.writeHead(200, { 'content-type': this.metrics.registry.contentType });
        return void response.end(await this.metrics.registry.metrics());
      default:
        throw new ApiError(
          404,
          'not_found_error',
          'not_found',
          `No route ${method} ${route}; this server answers /v1/chat/completions, /v1/models, /health and /metrics`,
        );
    }
  }

  private get modelName(): string {
    return this.engine?.info.model ?? this.options.modelName;
  }

  private requireEngine(): Engine {
    if (this.engine) return this.engine;
    if (this.loadError) {
      const reason =
        this.loadError instanceof Error ? this.loadError.message : String(this.loadError);
      throw new ApiError(
        503,
        'server_unavailable',
        'model_failed',
        `The model failed to load: ${reason}`,
      );
    }
    throw new ApiError(
      503,
      'server_unavailable',
      'model_loading',
      'The model is still loading; retry when GET /health reports "ready"',
    );
  }
}

const ROUTES = new Set(['/v1/chat/completions', '/v1/models', '/health', '/metrics']);

function routeName(request: IncomingMessage): string {
  const path = (request.url ?? '/').split('?')[0];
  return path.length > 1 ? path.replace(/\/+$/, '') : path;
}
