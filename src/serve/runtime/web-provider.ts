/**
 * onnxruntime-web's execution provider for `device`. The manifest's CPU-only nodes go to
 * `forceCpuNodeNames` (WebGPU only, and only when there are some: ORT refuses an empty value,
 * "Provider options key/value cannot be empty").
 */
export function ortWebProvider(device: 'webgpu' | 'wasm', cpuOnlyNodes: readonly string[] = []) {
  return device === 'webgpu'
    ? { name: 'webgpu' as const, ...(cpuOnlyNodes.length ? { forceCpuNodeNames: [...cpuOnlyNodes] } : {}) }
    : { name: 'wasm' as const };
}
