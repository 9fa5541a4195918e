import * as ort from 'onnxruntime-node';
import { FerryError } from '../../errors.ts';
import { wrapOrtSession } from '../../package/ort-session.ts';
import type { Session } from '../../package/session.ts';
import { openSessionInWorker } from './node-worker.ts';
import { firstLine, type Backend } from './registry.ts';
import type { SessionOptions } from './types.ts';

export type NodeDevice = 'cpu' | 'cuda' | 'webgpu';

/**
 * onnxruntime-node's backends: CUDA (best under `auto`, and falling back to CPU: asking ORT for
 * `['cuda', 'cpu']` throws when the CUDA EP is not installed instead of falling back), CPU, and
 * WebGPU (only by name: on a server it needs Vulkan). Sessions run in worker threads when
 * `worker` is set.
 */
export function nodeBackends(options: { worker?: boolean } = {}): Backend[] {
  // A missing CUDA EP is expected and handled by the registry; ORT's process-wide logger would
  // print its own error line for it, and every failure reaches us as an exception anyway.
  ort.env.logLevel = 'fatal';

  async function open(model: string | Uint8Array, target: NodeDevice, sessionOptions: SessionOptions): Promise<Session> {
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
    if (options.worker) return openSessionInWorker(model, config, `onnxruntime-node ${target}`);
    const session = typeof model === 'string'
      ? await ort.InferenceSession.create(model, config)
      : await ort.InferenceSession.create(model, config);
    return wrapOrtSession(ort.Tensor, session, `onnxruntime-node ${target}`);
  }

  return [
    {
      device: 'cuda',
      priority: 2,
      fallback: 'cpu',
      async createSession(model, sessionOptions) {
        try {
          return await open(model, 'cuda', sessionOptions);
        } catch (error) {
          throw new Error(`the CUDA execution provider is unavailable (${firstLine(error)})`, { cause: error });
        }
      },
    },
    { device: 'cpu', priority: 1, createSession: (model, sessionOptions) => open(model, 'cpu', sessionOptions) },
    {
      device: 'webgpu',
      priority: -1,
      async createSession(model, sessionOptions) {
        try {
          return await open(model, 'webgpu', sessionOptions);
        } catch (error) {
          throw new FerryError('device_unavailable', `onnxruntime-node could not open a WebGPU device: ${firstLine(error)}`, {
            hint: 'WebGPU on a server needs Vulkan (libvulkan1 and a GPU driver); use --device cpu or --device auto',
            status: 503,
            cause: error,
          });
        }
      },
    },
  ];
}
