import * as ort from 'onnxruntime-node';
import { FerryError } from '../../errors.ts';
import { wrapOrtSession } from '../../package/ort-session.ts';
import { openSessionInWorker } from './node-worker.ts';
import type { Session } from '../../package/session.ts';
import type { Logger, Runtime, SessionOptions } from './types.ts';

export type NodeDevice = 'cpu' | 'cuda' | 'webgpu';

/**
 * onnxruntime-node. Asking for `['cuda', 'cpu']` makes ORT throw when the CUDA EP is not
 * installed instead of falling back, so the fallback to CPU is ours: tried once, warned once.
 */
export function createNodeRuntime(device: NodeDevice | 'auto', log: Logger, options: { worker?: boolean } = {}): Runtime {
  let resolved: NodeDevice | undefined = device === 'auto' ? undefined : device;
  let warned = false;
  // A missing CUDA EP is expected and handled below; ORT's process-wide logger would print its
  // own error line for it, and every failure reaches us as an exception anyway.
  ort.env.logLevel = 'fatal';

  async function open(modelPath: string | Uint8Array, target: NodeDevice, sessionOptions: SessionOptions): Promise<Session> {
    const config: ort.InferenceSession.SessionOptions = {
      executionProviders: [target],
      graphOptimizationLevel: 'all',
      // Batches and a Transformer's past change shape from step to step. With memory patterns ORT
      // plans and allocates anew the first time it sees each shape (12-47 ms for a batch-32 step
      // of the shipped Transformer, 20-27 ms even for a smaller one); without them a new shape
      // costs 2-3 ms unless the arena must grow, and a repeated one runs as fast.
      enableMemPattern: false,
      logSeverityLevel: 3,
      ...(sessionOptions.intraOpThreads ? { intraOpNumThreads: sessionOptions.intraOpThreads } : {}),
    };
    if (options.worker) return openSessionInWorker(modelPath, config, `onnxruntime-node ${target}`);
    const session = typeof modelPath === 'string'
      ? await ort.InferenceSession.create(modelPath, config)
      : await ort.InferenceSession.create(modelPath, config);
    return wrapOrtSession(ort.Tensor, session, `onnxruntime-node ${target}`);
  }

  async function createSession(modelPath: string | Uint8Array, options: SessionOptions = {}): Promise<Session> {
    const target = resolved ?? 'cuda';
    if (target === 'webgpu') {
      try {
        return await open(modelPath, target, options);
      } catch (error) {
        throw new FerryError('device_unavailable', `onnxruntime-node could not open a WebGPU device: ${firstLine(error)}`, {
          hint: 'WebGPU on a server needs Vulkan (libvulkan1 and a GPU driver); use --device cpu or --device auto',
          status: 503,
          cause: error,
        });
      }
    }
    if (target !== 'cuda') return open(modelPath, target, options);
    try {
      const session = await open(modelPath, 'cuda', options);
      resolved = 'cuda';
      return session;
    } catch (error) {
      if (!warned) {
        log(device === 'auto'
          ? `device auto: cpu (no usable CUDA execution provider: ${firstLine(error)})`
          : `device cuda: the CUDA execution provider is unavailable (${firstLine(error)}); falling back to cpu`);
        warned = true;
      }
      resolved = 'cpu';
      return open(modelPath, 'cpu', options);
    }
  }

  return { createSession };
}

function firstLine(error: unknown): string {
  return (error instanceof Error ? error.message : String(error)).split('\n')[0]!;
}
