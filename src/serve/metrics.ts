import { Counter, Gauge, Histogram, Registry } from 'prom-client';

const latencyBuckets = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];

/** The server's Prometheus series, in a registry of its own so that apps never share state. */
export function createMetrics(sources: { queueDepth: () => Record<string, number>; activeSequences: () => Record<string, number> }) {
  const registry = new Registry();
  const registers = [registry];
  const metrics = {
    registry,
    requests: new Counter({ name: 'ferry_http_requests_total', help: 'HTTP requests by route and status', labelNames: ['route', 'status'] as const, registers }),
    promptTokens: new Counter({ name: 'ferry_prompt_tokens_total', help: 'Prompt tokens read', labelNames: ['model'] as const, registers }),
    completionTokens: new Counter({ name: 'ferry_completion_tokens_total', help: 'Tokens generated', labelNames: ['model'] as const, registers }),
    timeToFirstToken: new Histogram({ name: 'ferry_time_to_first_token_seconds', help: 'From request arrival to the first generated token', labelNames: ['model'] as const, buckets: latencyBuckets, registers }),
    interToken: new Histogram({ name: 'ferry_inter_token_seconds', help: 'Between consecutive generated tokens of one choice', labelNames: ['model'] as const, buckets: latencyBuckets, registers }),
    requestDuration: new Histogram({ name: 'ferry_request_duration_seconds', help: 'From request arrival to the last token of a completion', labelNames: ['model'] as const, buckets: latencyBuckets, registers }),
    batchSize: new Histogram({ name: 'ferry_batch_size', help: 'Sequences per decode step', labelNames: ['model'] as const, buckets: [1, 2, 4, 8, 16, 32, 64, 128], registers }),
  };
  new Gauge({
    name: 'ferry_queue_depth', help: 'Requests waiting for a batch slot', labelNames: ['model'] as const, registers,
    collect() {
      for (const [model, depth] of Object.entries(sources.queueDepth())) this.set({ model }, depth);
    },
  });
  new Gauge({
    name: 'ferry_active_sequences', help: 'Sequences being decoded', labelNames: ['model'] as const, registers,
    collect() {
      for (const [model, count] of Object.entries(sources.activeSequences())) this.set({ model }, count);
    },
  });
  return metrics;
}

export type Metrics = ReturnType<typeof createMetrics>;
