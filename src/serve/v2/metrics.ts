/** Prometheus series of the Open Inference Protocol, per model, in the app's registry. */
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';

const secondsBuckets = [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

export function createInferenceMetrics(registry: Registry, queueDepth: () => Record<string, number>) {
  const registers = [registry];
  new Gauge({
    name: 'ferry_infer_queue_depth', help: 'Inference requests waiting for a run', labelNames: ['model'] as const, registers,
    collect() {
      for (const [model, depth] of Object.entries(queueDepth())) this.set({ model }, depth);
    },
  });
  return {
    requests: new Counter({ name: 'ferry_infer_requests_total', help: 'Inference requests by model and status', labelNames: ['model', 'status'] as const, registers }),
    batchRows: new Histogram({ name: 'ferry_infer_batch_rows', help: 'Rows (batch dim) per model run', labelNames: ['model'] as const, buckets: [1, 2, 4, 8, 16, 32, 64, 128, 256], registers }),
    batchRequests: new Histogram({ name: 'ferry_infer_batch_requests', help: 'Requests per model run', labelNames: ['model'] as const, buckets: [1, 2, 4, 8, 16, 32, 64, 128], registers }),
    queueSeconds: new Histogram({ name: 'ferry_infer_queue_seconds', help: 'From a request joining the queue to its run starting', labelNames: ['model'] as const, buckets: secondsBuckets, registers }),
    runSeconds: new Histogram({ name: 'ferry_infer_run_seconds', help: 'One model run (session.run of a batch)', labelNames: ['model'] as const, buckets: secondsBuckets, registers }),
  };
}

export type InferenceMetrics = ReturnType<typeof createInferenceMetrics>;
