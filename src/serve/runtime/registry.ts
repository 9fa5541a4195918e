/**
 * Choosing where sessions run, in the spirit of onnxruntime-common's resolveBackend: each
 * backend has a device name and a priority; `auto` tries them best first, a device asked for by
 * name tries that one and then its fallback, and every backend that failed is recorded and
 * reported once, in one line. The Node server, the browser client and the edge worker each
 * register their backends here instead of choosing with if/else of their own. No Node APIs.
 */
import type { Session } from '../../package/session.ts';
import type { ConcreteDevice, Device, Logger, Runtime, SessionOptions } from './types.ts';

export interface Backend {
  readonly device: ConcreteDevice;
  /** Higher is tried first under `auto`; below 0 only when asked for by name. */
  readonly priority: number;
  /** Tried next when this backend, asked for by name, fails (cuda -> cpu); without one its failure is the answer. */
  readonly fallback?: ConcreteDevice;
  /** Throws, saying why, when this backend cannot run here (no adapter, no execution provider). Called once. */
  init?(): Promise<void>;
  createSession(model: string | Uint8Array, options: SessionOptions): Promise<Session>;
}

export interface BackendFailure {
  readonly device: ConcreteDevice;
  readonly reason: string;
}

export interface ResolvedRuntime extends Runtime {
  /** The device sessions run on, once the first session has chosen it. */
  readonly device: ConcreteDevice | undefined;
  /** The backends that were tried and failed, best first. */
  readonly failures: readonly BackendFailure[];
}

const GPU_DEVICES: readonly ConcreteDevice[] = ['cuda', 'webgpu'];

/** The backends to try for `wanted`, in order. */
function candidatesFor(backends: readonly Backend[], wanted: Device): Backend[] {
  if (wanted === 'auto') return backends.filter((b) => b.priority >= 0).sort((a, b) => b.priority - a.priority);
  const order: Backend[] = [];
  for (let device: ConcreteDevice | undefined = wanted; device && !order.some((b) => b.device === device);) {
    const backend = backends.find((b) => b.device === device);
    if (!backend) break;
    order.push(backend);
    device = backend.fallback;
  }
  return order;
}

/**
 * A Runtime that resolves its backend at the first session and keeps it for the others. When
 * every candidate fails, the last one's error is thrown (the others are in the log line).
 */
export function resolveRuntime(backends: readonly Backend[], wanted: Device, log: Logger, verbose?: Logger): ResolvedRuntime {
  const candidates = candidatesFor(backends, wanted);
  const failures: BackendFailure[] = [];
  const initialized = new Map<Backend, Promise<void>>();
  let chosen: Backend | undefined;

  function report(): void {
    if (!failures.length || !chosen) return;
    const reasons = failures.map((f) => (wanted === 'auto' ? `${f.device}: ${f.reason}` : f.reason)).join('; ');
    if (wanted !== 'auto') {
      log(`device ${wanted}: ${reasons}; falling back to ${chosen.device}`);
      return;
    }
    // Under auto a missing GPU is the normal case on most machines: one calm line, the reasons only when asked.
    const missing = failures.every((f) => GPU_DEVICES.includes(f.device)) ? 'no GPU provider found' : `${failures.map((f) => f.device).join(', ')} unavailable`;
    log(`device: ${chosen.device} (${missing}; see docs/HTTP.md#devices)`);
    verbose?.(`device auto: ${chosen.device} (${reasons})`);
  }

  async function createSession(model: string | Uint8Array, options: SessionOptions = {}): Promise<Session> {
    if (chosen) return chosen.createSession(model, options);
    if (!candidates.length) throw new Error(`no backend offers the device ${wanted}`);
    let lastError: unknown;
    for (const backend of candidates) {
      try {
        if (!initialized.has(backend)) initialized.set(backend, backend.init?.() ?? Promise.resolve());
        await initialized.get(backend);
        const session = await backend.createSession(model, options);
        chosen = backend;
        report();
        return session;
      } catch (error) {
        lastError = error;
        failures.push({ device: backend.device, reason: firstLine(error) });
      }
    }
    throw lastError;
  }

  return {
    createSession,
    get device() {
      return chosen?.device;
    },
    failures,
  };
}

export function firstLine(error: unknown): string {
  return (error instanceof Error ? error.message : String(error)).split('\n')[0]!;
}
