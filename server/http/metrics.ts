/** The server's Prometheus metrics (GET /metrics), on a registry of its own. */
import { Counter, Gauge, Histogram, Registry } from 'prom-client';

export class ServerMetrics {
  readonly registry = new Registry();
  readonly requests = new Counter({
    name: 'd2c_http_requests_total',
    help: 'HTTP requests by route and status code',
    labelNames: ['route', 'status'] as const,
    registers: [this.registry],
  });
  readonly promptTokens = new Counter({
    name: 'd2c_prompt_tokens_total',
    help: 'Prompt tokens processed (image tokens included)',
    registers: [this.registry],
  });
  readonly reusedPromptTokens = new Counter({
    name: 'd2c_prompt_tokens_reused_total',
    help: 'Prompt tokens whose KV cache was kept from the request before (not read again)',
    registers: [this.registry],
  });
  readonly completionTokens = new Counter({
    name: 'd2c_completion_tokens_total',
    help: 'Tokens generated',
    registers: [this.registry],
  });
  readonly timeToFirstToken = new Histogram({
    name: 'd2c_time_to_first_token_seconds',
    help: 'From the request arriving to the first generated token (queue wait included)',
    buckets: [0.05, 0.1, 0.25, 0.5, 1, 2, 4, 8, 16, 32, 64],
    registers: [this.registry],
  });
  readonly tokensPerSecond = new Histogram({
    name: 'd2c_decode_tokens_per_second',
    help: 'Decode speed of each generation, after the first token',
    buckets: [1, 2, 5, 10, 20, 40, 80, 160, 320, 640],
    registers: [this.registry],
  });
  readonly queueLength = new Gauge({
    name: 'd2c_queue_length',
    help: 'Requests waiting for the engine',
    registers: [this.registry],
  });
  readonly busy = new Gauge({
    name: 'd2c_generation_running',
    help: '1 while a generation runs on the engine',
    registers: [this.registry],
  });
}
