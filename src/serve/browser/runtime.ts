import { fromOrtResults, toOrtFeeds } from '../runtime/convert.ts';
import type { Runtime, Session, SessionOptions } from '../runtime/types.ts';

export type OrtWeb = typeof import('onnxruntime-web');

/**
 * A Runtime over an onnxruntime-web module the caller has already loaded and configured: the
 * page's import-mapped WebGPU or WASM build, or the edge worker's bundled WASM build. The
 * manifest's CPU-only nodes go to ORT's `forceCpuNodeNames` (WebGPU only, and only when there
 * are some: ORT refuses an empty option value).
 */
export function createOrtWebRuntime(ort: OrtWeb, device: 'webgpu' | 'wasm'): Runtime {
  async function createSession(model: string | Uint8Array, options: SessionOptions = {}): Promise<Session> {
    const cpuOnly = options.cpuOnlyNodes ?? [];
    const provider = device === 'webgpu'
      ? { name: 'webgpu' as const, ...(cpuOnly.length ? { forceCpuNodeNames: [...cpuOnly] } : {}) }
      : { name: 'wasm' as const };
    const config = { executionProviders: [provider], graphOptimizationLevel: 'all' as const, logSeverityLevel: 3 as const };
    const session = typeof model === 'string' ? await ort.InferenceSession.create(model, config) : await ort.InferenceSession.create(model, config);
    return {
      provider: `onnxruntime-web ${device}`,
      inputNames: session.inputNames,
      outputNames: session.outputNames,
      async run(feeds) {
        const results = await session.run(toOrtFeeds(ort.Tensor, feeds));
        return fromOrtResults(results as Record<string, InstanceType<OrtWeb['Tensor']>>);
      },
      release: () => session.release(),
    };
  }
  return { createSession };
}
