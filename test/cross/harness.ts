// Shared by the cross-runtime tests and bench/cross-runtime.ts: a Node server (createApp +
// the playground) over real exported packages, and headless Chromium driven by playwright-core.
import { existsSync } from 'node:fs';
import { serve, type ServerType } from '@hono/node-server';
import { Miniflare } from 'miniflare';
import type { Browser } from 'playwright-core';
import type { EdgeBuild } from '../../scripts/build-edge.ts';
import { createApp } from '../../src/serve/app.ts';
import { openModel, type ServedModel } from '../../src/serve/model.ts';
import { mountPlayground } from '../../src/serve/playground/index.ts';
import { openRuntime } from '../../src/serve/runtime/index.ts';

export const CHROMIUM = '/usr/bin/chromium';

/** Why the browser tests cannot run here, or null when they can. */
export function chromiumMissing(): string | null {
  return existsSync(CHROMIUM) ? null : `${CHROMIUM} is absent (Debian package chromium); skipping the browser tests`;
}

export interface NodeServer {
  url: string;
  models: ServedModel[];
  close(): Promise<void>;
}

/** `ferry serve` as the lead wires it: the HTTP API plus the playground, on a free port. */
export async function startNodeServer(dirs: readonly string[], device = 'cpu'): Promise<NodeServer> {
  const runtime = await openRuntime(device, () => {});
  const models: ServedModel[] = [];
  for (const dir of dirs) models.push(await openModel(dir, { runtime, maxBatch: 4, maxQueue: 8 }));
  const app = createApp({ models });
  await mountPlayground(app, { packages: dirs });
  const server = await new Promise<ServerType>((resolve) => {
    const started = serve({ fetch: app.fetch, port: 0, hostname: '127.0.0.1' }, () => resolve(started));
  });
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  return {
    url: `http://127.0.0.1:${port}`,
    models,
    async close() {
      await new Promise<void>((resolve) => server.close(() => resolve()));
      for (const model of models) await model.close();
    },
  };
}

/** Headless Chromium with a software WebGPU adapter (SwiftShader), as docs/ARCHITECTURE.md, "Runtime facts" says; playwright gives it a fresh profile. */
export async function launchChromium(options: { webgpu?: boolean } = {}): Promise<Browser> {
  const { chromium } = await import('playwright-core');
  const args = [
    '--no-sandbox', '--disable-quic', '--no-first-run', '--disable-background-networking',
    '--disable-component-update', '--disable-sync',
    ...(options.webgpu === false ? ['--disable-webgpu'] : ['--enable-unsafe-webgpu', '--enable-features=Vulkan', '--use-angle=swiftshader', '--use-webgpu-adapter=swiftshader']),
  ];
  return chromium.launch({ executablePath: CHROMIUM, headless: true, args });
}

export async function completeOnServer(url: string, body: Record<string, unknown>): Promise<{ status: number; json: any }> {
  const response = await fetch(`${url}/v1/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  return { status: response.status, json: await response.json() };
}

/** The edge worker of a build in workerd, with the module rules its wrangler.toml declares. */
export function startWorkerd(build: EdgeBuild, bindings: Record<string, string> = {}): Miniflare {
  return new Miniflare({
    scriptPath: build.worker,
    modulesRoot: build.outDir,
    modules: true,
    modulesRules: [{ type: 'CompiledWasm', include: ['**/*.wasm'] }, { type: 'Data', include: ['**/*.onnx'] }],
    compatibilityDate: '2026-04-01',
    bindings,
  });
}
