import { FerryError } from '../../errors.ts';
import { resolveRuntime, type ResolvedRuntime } from './registry.ts';
import { DEVICES, type Device, type Logger } from './types.ts';

export * from './types.ts';

/**
 * The runtime for a device on Node: onnxruntime-node's backends (`auto` = CUDA when its EP is
 * installed, else CPU, said once in the log), whose sessions run in worker threads when
 * `worker` is set, and `wasm`, onnxruntime-web; `verbose` gets why the better backends failed.
 */
export async function openRuntime(device: string, log: Logger, options: { worker?: boolean; verbose?: Logger } = {}): Promise<ResolvedRuntime> {
  if (!(DEVICES as readonly string[]).includes(device)) {
    throw new FerryError('bad_device', `unknown device "${device}"`, { hint: `use one of: ${DEVICES.join(', ')}` });
  }
  const wanted = device as Device;
  const { nodeBackends } = await import('./node.ts');
  const { nodeWasmBackend } = await import('./web.ts');
  return resolveRuntime([...nodeBackends(options), nodeWasmBackend()], wanted, log, options.verbose);
}
