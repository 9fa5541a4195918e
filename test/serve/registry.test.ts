import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { Session } from '../../src/package/session.ts';
import { resolveRuntime, type Backend } from '../../src/serve/runtime/registry.ts';
import type { ConcreteDevice } from '../../src/serve/runtime/types.ts';

/** A backend that opens sessions named after it, or fails with `failure`; `tries` counts attempts. */
function backend(device: ConcreteDevice, priority: number, options: { failure?: string; fallback?: ConcreteDevice; initFailure?: string } = {}) {
  const tries: string[] = [];
  const result: Backend & { tries: string[] } = {
    device, priority, fallback: options.fallback, tries,
    async init() {
      tries.push('init');
      if (options.initFailure) throw new Error(options.initFailure);
    },
    async createSession() {
      tries.push('session');
      if (options.failure) throw new Error(`${options.failure}\nsecond line`);
      return { provider: device, inputNames: [], outputNames: [], run: async () => ({}), release: async () => {} } satisfies Session;
    },
  };
  return result;
}

test('auto tries the backends best first, skips those below priority 0, and reports the failed ones once', async () => {
  const cuda = backend('cuda', 2, { failure: 'no CUDA' });
  const cpu = backend('cpu', 1);
  const webgpu = backend('webgpu', -1);
  const lines: string[] = [];
  const details: string[] = [];
  const runtime = resolveRuntime([cpu, webgpu, cuda], 'auto', (line) => lines.push(line), (line) => details.push(line));
  assert.equal(runtime.device, undefined);
  assert.equal((await runtime.createSession('m')).provider, 'cpu');
  assert.equal((await runtime.createSession('m')).provider, 'cpu');
  assert.equal(runtime.device, 'cpu');
  assert.deepEqual(runtime.failures, [{ device: 'cuda', reason: 'no CUDA' }]);
  // One calm line for the usual case; the reasons only under --verbose.
  assert.deepEqual(lines, ['device: cpu (no GPU provider found; see docs/HTTP.md#devices)']);
  assert.deepEqual(details, ['device auto: cpu (cuda: no CUDA)']);
  assert.deepEqual(cuda.tries, ['init', 'session'], 'a failed backend is not tried again');
  assert.deepEqual(webgpu.tries, []);
});

test('a device asked for by name falls back only where it says so; a failed init is a failure too', async () => {
  const lines: string[] = [];
  const webgpu = backend('webgpu', 1, { initFailure: 'no adapter', fallback: 'wasm' });
  const runtime = resolveRuntime([webgpu, backend('wasm', 0)], 'webgpu', (line) => lines.push(line));
  assert.equal((await runtime.createSession('m')).provider, 'wasm');
  assert.deepEqual(webgpu.tries, ['init'], 'init failed: no session was attempted');
  assert.deepEqual(lines, ['device webgpu: no adapter; falling back to wasm']);

  const alone = resolveRuntime([backend('webgpu', -1, { failure: 'no Vulkan' }), backend('cpu', 1)], 'webgpu', () => {});
  await assert.rejects(alone.createSession('m'), /^Error: no Vulkan/);
  assert.deepEqual(alone.failures, [{ device: 'webgpu', reason: 'no Vulkan' }]);
});
