/**
 * tfjs's WebGPU backend in Node, on Dawn (the `webgpu` package: its binary ships in the npm
 * tarball, so it installs where only npm is reachable).
 *
 * Dawn's native backend (Vulkan on Linux: libvulkan1 and a GPU driver) drives a real GPU. Where
 * there is none, Dawn's OpenGL backend over Mesa's llvmpipe still runs WebGPU in software:
 * correct, but slower than wasm. So adapters are tried hardware-first, the log names the one that
 * runs (name, vendor, Dawn backend, "software (llvmpipe)"), and `auto` never trains on software.
 */
import { spawn } from 'node:child_process';
import * as tf from '@tensorflow/tfjs';

export type GpuAdapterSummary = {
  /** Dawn's backend that serves the adapter: vulkan, opengl, metal, d3d12. */
  backend: string;
  vendor: string;
  architecture: string;
  device: string;
  description: string;
  /** The software renderer behind the adapter (llvmpipe, lavapipe, SwiftShader, ...); null on a real GPU. */
  software: string | null;
};

/** What Dawn offers: the adapter it would run on, or why there is none and what to install. */
export type GpuProbe = { ok: true; adapter: GpuAdapterSummary } | { ok: false; reason: string; hint: string };

export type AdapterAttempt = {
  backend: string;
  /** Options for the `webgpu` package's create(): Dawn toggles and `backend=`. */
  flags: string[];
  options: GPURequestAdapterOptions & { featureLevel?: 'core' | 'compatibility' };
  /** Environment the backend's driver reads at start-up, set only where the user has not set it. */
  env: Record<string, string>;
};

/** One attempt's outcome: the adapter's info, null when Dawn offered none, or the error it threw. */
export type AttemptOutcome = { backend: string; info: AdapterInfo | null; error?: string };
type AdapterInfo = { vendor?: string; architecture?: string; device?: string; description?: string; isFallbackAdapter?: boolean };

/** Dawn's OpenGL backend opens the unversioned libEGL.so, which Debian ships in libegl-dev. */
const MESA_PACKAGES = 'libegl-dev libegl-mesa0 libgl1-mesa-dri';
const SOFTWARE_RENDERERS: [RegExp, string][] = [
  [/llvmpipe/i, 'llvmpipe'],
  [/lavapipe/i, 'lavapipe'],
  [/swiftshader/i, 'SwiftShader'],
  [/softpipe/i, 'softpipe'],
  [/microsoft basic render/i, 'WARP'],
];

/** The adapters to try, best first: the platform's native GPU API, then (Linux) OpenGL, where Mesa's llvmpipe runs without a GPU. */
export function adapterAttempts(platform: NodeJS.Platform = process.platform): AdapterAttempt[] {
  const native = platform === 'darwin' ? 'metal' : platform === 'win32' ? 'd3d12' : 'vulkan';
  const attempts: AdapterAttempt[] = [{ backend: native, flags: [`backend=${native}`], options: { powerPreference: 'high-performance' }, env: {} }];
  if (platform === 'linux') {
    attempts.push({
      backend: 'opengl',
      flags: ['backend=opengl'],
      // Dawn's OpenGL backend offers only a compatibility-mode adapter; without a display EGL needs the surfaceless platform.
      options: { powerPreference: 'high-performance', featureLevel: 'compatibility' },
      env: { EGL_PLATFORM: 'surfaceless' },
    });
  }
  return attempts;
}

/** The adapter facts the log and the choice need, from Dawn's GPUAdapterInfo. */
export function summarizeAdapter(backend: string, info: AdapterInfo): GpuAdapterSummary {
  const vendor = info.vendor ?? '', architecture = info.architecture ?? '', device = info.device ?? '', description = info.description ?? '';
  const text = [vendor, architecture, device, description].join(' ');
  const renderer = SOFTWARE_RENDERERS.find(([pattern]) => pattern.test(text))?.[1];
  const software = renderer ?? (info.isFallbackAdapter ? 'a fallback adapter' : null);
  return { backend, vendor, architecture, device, description, software };
}

/** One phrase for the log, e.g. "NVIDIA H200 (nvidia, hopper, vulkan)" or "llvmpipe-llvm-15-0-6-256-bits- (opengl, OpenGL version 4.5 ...), software (llvmpipe)". */
export function describeAdapter(adapter: GpuAdapterSummary): string {
  const name = adapter.device || adapter.description || adapter.architecture || 'unnamed adapter';
  const facts = [adapter.vendor, adapter.architecture, adapter.backend, adapter.description === name ? '' : adapter.description].filter(Boolean);
  return `${name} (${facts.join(', ')})${adapter.software ? `, software (${adapter.software})` : ''}`;
}

/** The first real GPU among the attempts, else the first software adapter, else why there is none and what to install. */
export function chooseAdapter(outcomes: AttemptOutcome[], platform: NodeJS.Platform = process.platform): { ok: true; index: number; adapter: GpuAdapterSummary } | Extract<GpuProbe, { ok: false }> {
  const found = outcomes.flatMap(({ backend, info }, index) => (info ? [{ index, adapter: summarizeAdapter(backend, info) }] : []));
  const chosen = found.find(({ adapter }) => !adapter.software) ?? found[0];
  if (chosen) return { ok: true, ...chosen };
  const failures = outcomes.map(({ backend, error }) => `${backend}: ${error ?? 'no adapter'}`);
  return {
    ok: false,
    reason: `Dawn found no WebGPU adapter (${failures.join('; ')})`,
    hint: platform === 'linux'
      ? 'On a GPU machine install its driver and the Vulkan loader (`apt-get install libvulkan1`); to run in software '
        + `(slow) install Mesa's EGL (\`apt-get install ${MESA_PACKAGES}\`). Or use --backend wasm.`
      : 'Install or update the GPU driver, or use --backend wasm.',
  };
}

/**
 * Whether `auto` trains on what the probe found. A software adapter never: on llvmpipe a
 * nanogpt-cpu step took ~10x and an LSTM step ~100x as long as on ferry's wasm kernels (every
 * kernel launch costs milliseconds there). A real GPU comes before wasm (the native TensorFlow
 * bindings, when installed, still come first).
 */
export function autoUsesAdapter(probe: GpuProbe): { use: true } | { use: false; reason: string } {
  if (!probe.ok) return { use: false, reason: probe.reason };
  if (probe.adapter.software) return { use: false, reason: `only a software adapter, ${describeAdapter(probe.adapter)}: slower than wasm` };
  return { use: true };
}

const PACKAGE_MISSING_HINT = 'Install it with `npm install webgpu` (its binary covers Linux x64/arm64, macOS and Windows), or use --backend wasm.';

type OpenedAdapter = { gpu: GPU; globals: object; adapter: GPUAdapter; summary: GpuAdapterSummary };

/** Tries the adapters in order in this process, stopping at the first real GPU. */
async function openAdapter(): Promise<{ ok: true; opened: OpenedAdapter } | Extract<GpuProbe, { ok: false }>> {
  let webgpu: typeof import('webgpu');
  try {
    webgpu = await import('webgpu');
  } catch (error) {
    return { ok: false, reason: `the webgpu package (Dawn) did not load: ${(error as Error).message.split('\n')[0]}`, hint: PACKAGE_MISSING_HINT };
  }
  const outcomes: AttemptOutcome[] = [];
  const opened: ({ gpu: GPU; adapter: GPUAdapter } | null)[] = [];
  for (const attempt of adapterAttempts()) {
    for (const [name, value] of Object.entries(attempt.env)) process.env[name] ??= value;
    try {
      const gpu = webgpu.create(attempt.flags);
      const adapter = await gpu.requestAdapter(attempt.options);
      outcomes.push({ backend: attempt.backend, info: adapter?.info ?? null });
      opened.push(adapter ? { gpu, adapter } : null);
      if (adapter && !summarizeAdapter(attempt.backend, adapter.info).software) break;
    } catch (error) {
      outcomes.push({ backend: attempt.backend, info: null, error: (error as Error).message.split('\n')[0] });
      opened.push(null);
    }
  }
  const choice = chooseAdapter(outcomes);
  if (!choice.ok) return choice;
  return { ok: true, opened: { ...opened[choice.index]!, globals: webgpu.globals, summary: choice.adapter } };
}

/** The tfjs device for an adapter, with the limits tfjs's own WebGPU start-up asks for. */
async function requestDevice(adapter: GPUAdapter): Promise<GPUDevice> {
  const limits = adapter.limits;
  return adapter.requestDevice({
    requiredLimits: {
      maxComputeWorkgroupStorageSize: limits.maxComputeWorkgroupStorageSize,
      maxComputeWorkgroupsPerDimension: limits.maxComputeWorkgroupsPerDimension,
      maxStorageBufferBindingSize: limits.maxStorageBufferBindingSize,
      maxBufferSize: limits.maxBufferSize,
      maxComputeWorkgroupSizeX: limits.maxComputeWorkgroupSizeX,
      maxComputeInvocationsPerWorkgroup: limits.maxComputeInvocationsPerWorkgroup,
      maxStorageBuffersPerShaderStage: limits.maxStorageBuffersPerShaderStage,
    },
  });
}

/**
 * tfjs's WebGPU backend reads `navigator.gpu` and the WebGPU constants (GPUBufferUsage, ...) as
 * globals, as in a browser. Node 20 has no navigator; later versions have one without gpu.
 */
function exposeGpu(gpu: GPU, globals: object): void {
  for (const [name, value] of Object.entries(globals)) {
    if (!(name in globalThis)) Object.defineProperty(globalThis, name, { value, configurable: true, writable: true });
  }
  const navigator = (globalThis as { navigator?: object }).navigator;
  if (navigator) Object.defineProperty(navigator, 'gpu', { value: gpu, configurable: true, writable: true });
  else Object.defineProperty(globalThis, 'navigator', { value: { gpu }, configurable: true, writable: true });
}

let registered: Promise<GpuProbe> | undefined;

/**
 * Registers tfjs's "webgpu" backend on the best adapter Dawn offers (once per process) and says
 * which adapter that is. tfjs's own start-up asks for a core adapter, which the OpenGL path does
 * not offer, so ferry registers a factory for the adapter it chose.
 */
export function registerWebGpuBackend(): Promise<GpuProbe> {
  registered ??= (async (): Promise<GpuProbe> => {
    const found = await openAdapter();
    if (!found.ok) return found;
    const { gpu, globals, adapter, summary } = found.opened;
    // Imported before navigator.gpu exists, so the package's own factory is not registered.
    const { WebGPUBackend } = await import('@tensorflow/tfjs-backend-webgpu');
    if (tf.findBackendFactory('webgpu')) tf.removeBackend('webgpu');
    exposeGpu(gpu, globals);
    tf.registerBackend('webgpu', async () => new WebGPUBackend(await requestDevice(adapter), adapter.info));
    registerChunkedAddN();
    return { ok: true, adapter: summary };
  })();
  return registered;
}

/**
 * tfjs's WebGPU AddN binds every input to one shader, and the pipeline is invalid (its result
 * garbage) past the device's storage-buffer limit: 8 by default, 16 on llvmpipe. ferry's
 * gradient clipping sums one term per weight (54 for nanogpt-cpu), so sum in chunks that fit.
 */
function registerChunkedAddN(): void {
  const stock = tf.getKernel(tf.AddN, 'webgpu');
  if (!stock) return;
  const kernelFunc: tf.KernelFunc = (args) => {
    const backend = args.backend as unknown as { device: GPUDevice; disposeData(dataId: object): void };
    const perShader = backend.device.limits.maxStorageBuffersPerShaderStage - 1; // one binding is the output
    let terms = args.inputs as unknown as tf.TensorInfo[];
    const partials: tf.TensorInfo[] = [];
    while (terms.length > perShader) {
      const sums: tf.TensorInfo[] = [];
      for (let i = 0; i < terms.length; i += perShader) {
        const chunk = terms.slice(i, i + perShader);
        if (chunk.length === 1) sums.push(chunk[0]!);
        else {
          const sum = stock.kernelFunc({ ...args, inputs: chunk as unknown as tf.NamedTensorInfoMap }) as tf.TensorInfo;
          partials.push(sum);
          sums.push(sum);
        }
      }
      terms = sums;
    }
    const total = stock.kernelFunc({ ...args, inputs: terms as unknown as tf.NamedTensorInfoMap }) as tf.TensorInfo;
    for (const partial of partials) backend.disposeData(partial.dataId);
    return total;
  };
  tf.unregisterKernel(tf.AddN, 'webgpu');
  tf.registerKernel({ kernelName: tf.AddN, backendName: 'webgpu', kernelFunc });
}

/** Runs every attempt and prints the outcomes as JSON: argv[1] is the webgpu package's URL, argv[2] the attempts. */
const PROBE_SCRIPT = `
const { create } = await import(process.argv[1]);
const outcomes = [];
for (const attempt of JSON.parse(process.argv[2])) {
  for (const [name, value] of Object.entries(attempt.env)) process.env[name] ??= value;
  try {
    const adapter = await create(attempt.flags).requestAdapter(attempt.options);
    const info = adapter && { vendor: adapter.info.vendor, architecture: adapter.info.architecture, device: adapter.info.device,
      description: adapter.info.description, isFallbackAdapter: adapter.info.isFallbackAdapter };
    outcomes.push({ backend: attempt.backend, info });
  } catch (error) {
    outcomes.push({ backend: attempt.backend, info: null, error: String(error.message).split('\\n')[0] });
  }
}
process.stdout.write(JSON.stringify(outcomes) + '\\n');
process.exit(0);
`;
const PROBE_TIMEOUT_MS = 30_000;
let probed: Promise<GpuProbe> | undefined;

/**
 * The adapter Dawn would offer, found in a child process: a broken GPU driver cannot take the
 * training run down with it, and a run that ends up on wasm neither loads Dawn nor shows its
 * driver warnings. Once per process.
 */
export function probeAdapterIsolated(): Promise<GpuProbe> {
  probed ??= new Promise<GpuProbe>((resolve) => {
    let packageUrl: string;
    try {
      packageUrl = import.meta.resolve('webgpu');
    } catch (error) {
      resolve({ ok: false, reason: `the webgpu package is not installed (${(error as Error).message.split('\n')[0]})`, hint: PACKAGE_MISSING_HINT });
      return;
    }
    const child = spawn(process.execPath, ['--input-type=module', '-e', PROBE_SCRIPT, packageUrl, JSON.stringify(adapterAttempts())], {
      stdio: ['ignore', 'pipe', 'ignore'],
      timeout: PROBE_TIMEOUT_MS,
    });
    let stdout = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
    const failed = (reason: string): GpuProbe => ({ ok: false, reason, hint: 'Run with --backend webgpu to see the error.' });
    child.on('error', (error) => resolve(failed(`the adapter probe did not start: ${error.message}`)));
    child.on('close', (code, signal) => {
      let outcomes: AttemptOutcome[];
      try {
        outcomes = JSON.parse(stdout.trim().split('\n').at(-1) ?? '') as AttemptOutcome[];
      } catch {
        resolve(failed(signal ? `the adapter probe was stopped by ${signal}` : `the adapter probe exited with code ${code}`));
        return;
      }
      const choice = chooseAdapter(outcomes);
      resolve(choice.ok ? { ok: true, adapter: choice.adapter } : choice);
    });
  });
  return probed;
}
