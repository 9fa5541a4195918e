import { FerryError } from '../../errors.ts';
import { DEVICES, type Device, type Logger, type Runtime } from './types.ts';

export * from './types.ts';

/**
 * The runtime for a device on Node: `wasm` is onnxruntime-web, everything else
 * onnxruntime-node (`auto` = CUDA when its EP is installed, else CPU, said once in the log),
 * whose sessions run in worker threads when `worker` is set.
 * Browsers and edge workers call `createWebRuntime` from `./web.ts` directly.
 */
export async function openRuntime(device: string, log: Logger, options: { worker?: boolean } = {}): Promise<Runtime> {
  if (!(DEVICES as readonly string[]).includes(device)) {
    throw new FerryError('bad_device', `unknown device "${device}"`, { hint: `use one of: ${DEVICES.join(', ')}` });
  }
  const wanted = device as Device;
  if (wanted === 'wasm') {
    const { createWebRuntime } = await import('./web.ts');
    return createWebRuntime('wasm', log);
  }
  const { createNodeRuntime } = await import('./node.ts');
  return createNodeRuntime(wanted, log, options);
}
