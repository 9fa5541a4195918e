/**
 * Picks the tfjs backend that trains: the native TensorFlow bindings when installed (optional
 * packages: they download libtensorflow at install time), else WebGPU on a real GPU (Dawn, from
 * npm), else wasm with ferry's extra kernels, else the pure-JS cpu backend.
 */
import * as tf from '@tensorflow/tfjs';
import { FerryError } from '../errors.ts';
import { registerWasmKernels } from './kernels/index.ts';
import { autoUsesAdapter, describeAdapter, probeAdapterIsolated, registerWebGpuBackend } from './webgpu.ts';

export type BackendName = 'tfjs-node-gpu' | 'tfjs-node' | 'wasm' | 'cpu' | 'webgpu';
export type BackendRequest = 'auto' | BackendName;
export const BACKEND_REQUESTS: readonly BackendRequest[] = ['auto', 'tfjs-node-gpu', 'tfjs-node', 'wasm', 'cpu', 'webgpu'];

export type SelectedBackend = {
  name: BackendName;
  /** One line for the log: what runs, and why a faster one was not used. */
  detail: string;
};

/** The order `auto` tries; it takes webgpu only on a real GPU (a software adapter is slower than wasm). */
export const AUTO_ORDER: readonly BackendName[] = ['tfjs-node-gpu', 'tfjs-node', 'webgpu', 'wasm', 'cpu'];

const NATIVE_PACKAGES = { 'tfjs-node-gpu': '@tensorflow/tfjs-node-gpu', 'tfjs-node': '@tensorflow/tfjs-node' } as const;

type Attempt = { ok: true; detail: string } | { ok: false; missing: boolean; reason: string; hint?: string };

/** Activates the requested backend (or the fastest that works for 'auto') and says which runs. */
export async function selectBackend(requested: BackendRequest | string = 'auto'): Promise<SelectedBackend> {
  // Production mode only silences tfjs's console advice (its "install tfjs-node" banner on the cpu
  // backend's first use, deprecation notes): ferry's own log says which backend runs and why.
  tf.enableProdMode();
  if (!(BACKEND_REQUESTS as readonly string[]).includes(requested)) {
    throw new FerryError('unknown_backend', `Unknown backend "${requested}".`, { hint: `Valid backends: ${BACKEND_REQUESTS.join(', ')}.` });
  }
  if (requested !== 'auto') {
    const name = requested as BackendName;
    const attempt = await activate(name);
    if (attempt.ok) return { name, detail: attempt.detail };
    throw unavailable(name, attempt);
  }
  const skipped: string[] = [];
  for (const name of AUTO_ORDER) {
    const attempt = name === 'webgpu' ? await activateWebGpuIfHardware() : await activate(name);
    if (attempt.ok) {
      return { name, detail: skipped.length === 0 ? attempt.detail : `${attempt.detail}; skipped ${skipped.join(', ')}` };
    }
    skipped.push(`${name} (${attempt.reason})`);
  }
  throw new FerryError('no_backend', `No tfjs backend could start (${skipped.join('; ')}).`, { status: 500 });
}

async function activate(name: BackendName): Promise<Attempt> {
  switch (name) {
    case 'tfjs-node-gpu':
    case 'tfjs-node':
      return activateNative(name);
    case 'wasm':
      return activateWasm();
    case 'cpu':
      return (await tf.setBackend('cpu'))
        ? { ok: true, detail: 'cpu (pure JavaScript, slow: install @tensorflow/tfjs-node or use wasm for real runs)' }
        : { ok: false, missing: false, reason: 'the cpu backend did not initialise' };
    case 'webgpu':
      return activateWebGpu();
  }
}

async function activateWebGpu(): Promise<Attempt> {
  const probe = await registerWebGpuBackend();
  if (!probe.ok) return { ok: false, missing: false, reason: probe.reason, hint: probe.hint };
  if (!(await tf.setBackend('webgpu'))) {
    return { ok: false, missing: false, reason: `tfjs's webgpu backend did not start on ${describeAdapter(probe.adapter)}`, hint: 'Use --backend wasm.' };
  }
  const speed = probe.adapter.software ? ': no GPU found, slower than wasm' : '';
  return { ok: true, detail: `webgpu on ${describeAdapter(probe.adapter)}${speed}` };
}

/** For auto: look at the adapter in a child process first, so a machine without a GPU never loads Dawn here. */
async function activateWebGpuIfHardware(): Promise<Attempt> {
  const verdict = autoUsesAdapter(await probeAdapterIsolated());
  return verdict.use ? activateWebGpu() : { ok: false, missing: false, reason: verdict.reason };
}

async function activateNative(name: 'tfjs-node-gpu' | 'tfjs-node'): Promise<Attempt> {
  const specifier: string = NATIVE_PACKAGES[name];
  try {
    await import(specifier);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    const missing = code === 'ERR_MODULE_NOT_FOUND' || code === 'MODULE_NOT_FOUND';
    return { ok: false, missing, reason: missing ? 'not installed' : `failed to load: ${(error as Error).message.split('\n')[0]}` };
  }
  if (!(await tf.setBackend('tensorflow'))) {
    return { ok: false, missing: false, reason: 'loaded, but its "tensorflow" backend did not initialise (is it built for this tfjs version?)' };
  }
  return { ok: true, detail: `${name} (native TensorFlow${name === 'tfjs-node-gpu' ? ', CUDA' : ''})` };
}

async function activateWasm(): Promise<Attempt> {
  try {
    await import('@tensorflow/tfjs-backend-wasm');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    const missing = code === 'ERR_MODULE_NOT_FOUND' || code === 'MODULE_NOT_FOUND';
    return { ok: false, missing, reason: missing ? 'not installed' : `failed to load: ${(error as Error).message}` };
  }
  registerWasmKernels();
  if (!(await tf.setBackend('wasm'))) return { ok: false, missing: false, reason: 'the wasm module did not initialise' };
  const simd = await tf.env().getAsync('WASM_HAS_SIMD_SUPPORT');
  return { ok: true, detail: `wasm (${simd ? 'SIMD' : 'no SIMD'}, with ferry's training kernels)` };
}

function unavailable(name: BackendName, attempt: Extract<Attempt, { ok: false }>): FerryError {
  const installHint = attempt.hint ?? (name === 'wasm'
    ? 'Install it with `npm install @tensorflow/tfjs-backend-wasm`, or use --backend cpu.'
    : `Install it with \`npm install ${NATIVE_PACKAGES[name as 'tfjs-node']}\` on a machine that can reach its binary host `
      + '(it downloads libtensorflow while installing), or use --backend wasm.');
  return new FerryError('backend_unavailable', `The ${name} backend is ${attempt.missing ? 'not installed' : `unavailable: ${attempt.reason}`}.`, {
    hint: installHint,
  });
}
