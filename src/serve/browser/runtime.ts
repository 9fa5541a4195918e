import { LOGITS } from '../../package/index.ts';
import { fromOrtResults, toOrtFeeds, withLentFeeds } from '../../package/ort-session.ts';
import { ortWebProvider } from '../runtime/web-provider.ts';
import type { NamedTensors, Session } from '../../package/session.ts';
import type { Backend } from '../runtime/registry.ts';
import type { Runtime, SessionOptions } from '../runtime/types.ts';

export type OrtWeb = typeof import('onnxruntime-web');

/**
 * An onnxruntime-web backend for the registry (src/serve/runtime/registry.ts): `load` hands over
 * the module, loaded and configured by the caller (the page's import-mapped build, the edge
 * worker's bundled WASM build), when the backend is first tried; `check` says why it cannot run.
 */
export function ortWebBackend(device: 'webgpu' | 'wasm', priority: number, load: () => Promise<OrtWeb>, check?: () => Promise<void>): Backend {
  let runtime: Promise<Runtime> | undefined;
  return {
    device,
    priority,
    ...(device === 'webgpu' ? { fallback: 'wasm' as const } : {}),
    init: check,
    async createSession(model, options) {
      runtime ??= load().then((ort) => createOrtWebRuntime(ort, device));
      return (await runtime).createSession(model, options);
    },
  };
}

/**
 * A Runtime over an onnxruntime-web module the caller has already loaded and configured: the
 * page's import-mapped WebGPU or WASM build, or the edge worker's bundled WASM build.
 */
export function createOrtWebRuntime(ort: OrtWeb, device: 'webgpu' | 'wasm'): Runtime {
  async function createSession(model: string | Uint8Array, options: SessionOptions = {}): Promise<Session> {
    const config = {
      executionProviders: [ortWebProvider(device, options.cpuOnlyNodes)], graphOptimizationLevel: 'all' as const, logSeverityLevel: 3 as const,
      ...(device === 'webgpu' ? { preferredOutputLocation: 'gpu-buffer' as const } : {}),
    };
    const session = typeof model === 'string' ? await ort.InferenceSession.create(model, config) : await ort.InferenceSession.create(model, config);
    const gpu = device === 'webgpu' ? createGpuStates(ort) : undefined;
    return {
      provider: `onnxruntime-web ${device}`,
      inputNames: session.inputNames,
      outputNames: session.outputNames,
      async run(feeds, options) {
        const ortFeeds = toOrtFeeds(ort.Tensor, feeds);
        const fed = gpu?.substitute(feeds, ortFeeds) ?? [];
        const results = options?.fetch ? await session.run(ortFeeds, [...options.fetch]) : await session.run(ortFeeds);
        for (const tensor of fed) tensor.dispose();
        const outputs = results as Record<string, InstanceType<OrtWeb['Tensor']>>;
        return withLentFeeds(gpu ? await gpu.download(outputs) : fromOrtResults(outputs), feeds, options);
      },
      release: () => session.release(),
    };
  }
  return { createSession };
}

type OrtTensor = InstanceType<OrtWeb['Tensor']>;

let residentFeeds = 0;

/** How many state inputs were fed straight from GPU buffers so far (for the playground and tests). */
export function gpuResidentFeeds(): number {
  return residentFeeds;
}

/**
 * WebGPU outputs stay in GPU buffers. The decoder gets a CPU copy of each (it regathers rows
 * when sequences join or leave), and when it feeds that same array back unchanged, as a steady
 * batch does every step, the GPU buffer is fed instead: the state is never uploaded again.
 */
function createGpuStates(ort: OrtWeb) {
  const onGpu = new WeakMap<object, OrtTensor>();
  const collected = new FinalizationRegistry<OrtTensor>((tensor) => tensor.dispose());

  function substitute(feeds: NamedTensors, ortFeeds: Record<string, OrtTensor>): OrtTensor[] {
    const fed: OrtTensor[] = [];
    for (const [name, tensor] of Object.entries(feeds)) {
      const resident = onGpu.get(tensor.data);
      if (!resident) continue;
      ortFeeds[name] = resident;
      onGpu.delete(tensor.data);
      collected.unregister(tensor.data);
      fed.push(resident);
      residentFeeds++;
    }
    return fed;
  }

  async function download(results: Record<string, OrtTensor>): Promise<NamedTensors> {
    const out: NamedTensors = {};
    for (const [name, tensor] of Object.entries(results)) {
      // Downloading turns the tensor into a CPU one; its buffer lives on until it is disposed.
      const buffer = tensor.location === 'gpu-buffer' ? tensor.gpuBuffer : undefined;
      const data = await tensor.getData();
      if (!(data instanceof Float32Array) && !(data instanceof BigInt64Array)) {
        throw new Error(`output ${name} has type ${tensor.type}; ferry models produce float32 and int64 only`);
      }
      out[name] = data instanceof Float32Array ? { dtype: 'float32', dims: [...tensor.dims], data } : { dtype: 'int64', dims: [...tensor.dims], data };
      if (!buffer) continue;
      if (name === LOGITS || !(data instanceof Float32Array)) {
        tensor.dispose();
        continue;
      }
      const resident = ort.Tensor.fromGpuBuffer(buffer, { dataType: 'float32', dims: tensor.dims, dispose: () => tensor.dispose() });
      onGpu.set(data, resident);
      collected.register(data, resident, data);
    }
    return out;
  }

  return { substitute, download };
}
