import { wrapOrtSession } from '../../package/ort-session.ts';
import { ortWebProvider } from './web-provider.ts';
import type { Session } from '../../package/session.ts';
import type { Logger, Runtime, SessionOptions } from './types.ts';
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
    return wrapOrtSession(ort.Tensor, session, `onnxruntime-web ${target}`);
  }

  return { createSession };
}

async function loadWasm(numThreads: number | undefined): Promise<OrtWeb> {
  const ort = await import('onnxruntime-web');
  if (numThreads !== undefined) ort.env.wasm.numThreads = numThreads;
  return ort;
}

