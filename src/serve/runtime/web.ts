import { fromOrtResults, ortWebProvider, toOrtFeeds, withLentFeeds } from './convert.ts';
import type { Logger, Runtime, Session, SessionOptions } from './types.ts';
import { hasWebGpuAdapter } from './webgpu.ts';

export type WebDevice = 'wasm' | 'webgpu';

type OrtWeb = typeof import('onnxruntime-web');

/**
 * onnxruntime-web: WASM everywhere (browsers, edge workers, Node), WebGPU where the platform
 * has an adapter. `auto` takes WebGPU only when `navigator.gpu` hands out an adapter.
 */
export function createWebRuntime(device: WebDevice | 'auto', log: Logger, options: { numThreads?: number } = {}): Runtime {
  let chosen: Promise<{ ort: OrtWeb; device: WebDevice }> | undefined;

  async function choose(): Promise<{ ort: OrtWeb; device: WebDevice }> {
    const wantGpu = device === 'webgpu' || (device === 'auto' && (await hasWebGpuAdapter()));
    if (device === 'webgpu' && !(await hasWebGpuAdapter())) {
      log('webgpu: this platform offers no WebGPU adapter; running on wasm');
      return { ort: await loadWasm(options.numThreads), device: 'wasm' };
    }
    if (wantGpu) return { ort: (await import('onnxruntime-web/webgpu')) as unknown as OrtWeb, device: 'webgpu' };
    return { ort: await loadWasm(options.numThreads), device: 'wasm' };
  }

  async function createSession(model: string | Uint8Array, sessionOptions: SessionOptions = {}): Promise<Session> {
    chosen ??= choose();
    const { ort, device: target } = await chosen;
    const config = { executionProviders: [ortWebProvider(target, sessionOptions.cpuOnlyNodes)], graphOptimizationLevel: 'all' as const, logSeverityLevel: 3 as const };
    const session = typeof model === 'string'
      ? await ort.InferenceSession.create(model, config)
      : await ort.InferenceSession.create(model, config);
    return {
      provider: `onnxruntime-web ${target}`,
      inputNames: session.inputNames,
      outputNames: session.outputNames,
      async run(feeds, options) {
        const ortFeeds = toOrtFeeds(ort.Tensor, feeds);
        const results = options?.fetch ? await session.run(ortFeeds, [...options.fetch]) : await session.run(ortFeeds);
        return withLentFeeds(fromOrtResults(results as Record<string, InstanceType<OrtWeb['Tensor']>>), feeds, options);
      },
      release: () => session.release(),
    };
  }

  return { createSession };
}

async function loadWasm(numThreads: number | undefined): Promise<OrtWeb> {
  const ort = await import('onnxruntime-web');
  if (numThreads !== undefined) ort.env.wasm.numThreads = numThreads;
  return ort;
}

