/**
 * What a runtime offers serving: sessions (the narrow interface in src/package/session.ts) on a
 * device a user can name.
 */

import type { Session } from '../../package/session.ts';

/** Devices a user can ask for; `auto` picks the best one that works. */
export const DEVICES = ['auto', 'cpu', 'cuda', 'webgpu', 'wasm'] as const;
export type Device = (typeof DEVICES)[number];
export type ConcreteDevice = Exclude<Device, 'auto'>;

export interface SessionOptions {
  /** Node names that must stay on the CPU EP (manifest `cpuOnlyNodes`). */
  cpuOnlyNodes?: readonly string[];
  intraOpThreads?: number;
}

export interface Runtime {
  createSession(model: string | Uint8Array, options?: SessionOptions): Promise<Session>;
}

export type Logger = (message: string) => void;
