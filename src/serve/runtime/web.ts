import { wrapOrtSession } from '../../package/ort-session.ts';
import type { Backend } from './registry.ts';
import { ortWebProvider } from './web-provider.ts';

/**
 * onnxruntime-web's WASM build on Node (`--device wasm`), loaded when first used; only by name,
 * since onnxruntime-node runs the same files faster. Browsers and edge workers register their
 * own onnxruntime-web backends (src/serve/browser/runtime.ts).
 */
export function nodeWasmBackend(options: { numThreads?: number } = {}): Backend {
  let ortWeb: Promise<typeof import('onnxruntime-web')> | undefined;
  return {
    device: 'wasm',
    priority: -1,
    async createSession(model, sessionOptions) {
      ortWeb ??= import('onnxruntime-web').then((ort) => {
        if (options.numThreads !== undefined) ort.env.wasm.numThreads = options.numThreads;
        return ort;
      });
      const ort = await ortWeb;
      const config = { executionProviders: [ortWebProvider('wasm', sessionOptions.cpuOnlyNodes)], graphOptimizationLevel: 'all' as const, logSeverityLevel: 3 as const };
      const session = typeof model === 'string'
        ? await ort.InferenceSession.create(model, config)
        : await ort.InferenceSession.create(model, config);
      return wrapOrtSession(ort.Tensor, session, 'onnxruntime-web wasm');
    },
  };
}
