// The playground and browser client in real headless Chromium: the same exported packages give
// the same greedy text in browser WebGPU (SwiftShader), browser WASM (2 threads) and the Node server.
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { Browser, Page } from 'playwright-core';
import { buildPackages, type TestPackages } from '../serve/packages.ts';
import { chromiumMissing, completeOnServer, launchChromium, startNodeServer, type NodeServer } from './harness.ts';

const skip = chromiumMissing();
if (skip) console.log(`# skip: ${skip}`);

const REQUEST = { prompt: 'to be, or', max_tokens: 12, temperature: 0 };

interface PageApi {
  ready: Promise<void>;
  select(id: string, device: string, threads: number): Promise<void>;
  load(): Promise<{ device: string; threads: number; notice: string | null; provider: string }>;
  runBrowser(fields?: Record<string, unknown>): Promise<{ device: string; text: string; tokens: number; tokensPerSecond: number }>;
  runServer(fields?: Record<string, unknown>): Promise<{ text: string; tokens: number }>;
  gpuResidentFeeds(): number;
}

async function openPlayground(browser: Browser, url: string): Promise<Page> {
  const page = await browser.newPage();
  const errors: string[] = [];
  page.on('pageerror', (error) => errors.push(String(error)));
  await page.goto(url);
  await page.waitForFunction(() => 'ferry' in globalThis);
  await page.evaluate(() => (globalThis as unknown as { ferry: PageApi }).ferry.ready);
  assert.deepEqual(errors, []);
  return page;
}

function runIn(page: Page, id: string, device: string, threads: number, request: Record<string, unknown> = REQUEST) {
  return page.evaluate(async ([id, device, threads, request]) => {
    const ferry = (globalThis as unknown as { ferry: PageApi }).ferry;
    await ferry.select(id, device, threads);
    const loaded = await ferry.load();
    return { loaded, run: await ferry.runBrowser(request) };
  }, [id, device, threads, request] as const);
}

// The trained models the repository ships (models/), when present: real text, real sizes.
// The language models of models/: this test drives them through the playground, which lists
// language models (the shipped T5 translator's browser path is test/cross/browser-t5.test.ts's).
const SHIPPED = existsSync('models')
  ? readdirSync('models').map((d) => path.join('models', d))
    .filter((d) => existsSync(path.join(d, 'ferry.json')) && ['lstm', 'transformer'].includes((JSON.parse(readFileSync(path.join(d, 'ferry.json'), 'utf8')) as { arch: string }).arch))
    .sort()
  : [];

describe('browser: playground, WebGPU and WASM', { skip: skip ?? false }, () => {
  let packages: TestPackages;
  let server: NodeServer;
  let browser: Browser;
  let page: Page;
  const serverText = new Map<string, string>();

  before(async () => {
    packages = await buildPackages();
    server = await startNodeServer([packages.lstm, packages.transformer]);
    for (const model of server.models) {
      const { status, json } = await completeOnServer(server.url, { ...REQUEST, model: model.id });
      assert.equal(status, 200);
      serverText.set(model.id, json.choices[0].text);
    }
    browser = await launchChromium();
    page = await openPlayground(browser, server.url);
  });

  after(async () => {
    await browser?.close();
    await server?.close();
    await packages?.remove();
  });

  test('the page is served cross-origin isolated and lists the server\'s models', async () => {
    const response = await fetch(server.url);
    assert.equal(response.headers.get('cross-origin-opener-policy'), 'same-origin');
    assert.equal(response.headers.get('cross-origin-embedder-policy'), 'require-corp');
    assert.equal(await page.title(), 'ferry playground');
    assert.equal(await page.evaluate(() => crossOriginIsolated), true);
    const options = await page.locator('#model option').allTextContents();
    assert.deepEqual(options, ['tiny-lstm (lstm)', 'tiny-transformer (transformer)']);
    const listed = (await (await fetch(`${server.url}/ferry/models`)).json()) as { models: { id: string; url: string }[] };
    assert.equal((await fetch(`${server.url}${listed.models[0]!.url}/ferry.json`)).status, 200);
    assert.equal((await fetch(`${server.url}/ferry/models/tiny-lstm/../../etc/passwd`)).status, 404);
    assert.equal((await fetch(`${server.url}/ferry/models/tiny-lstm/weights.bin`)).status, 404);
  });

  test('a WebGPU adapter is found (SwiftShader)', async () => {
    assert.equal(await page.evaluate(async () => (await (navigator as unknown as { gpu: { requestAdapter(): Promise<unknown> } }).gpu.requestAdapter()) != null), true);
  });

  for (const id of ['tiny-lstm', 'tiny-transformer']) {
    test(`${id}: greedy text is the same in browser WebGPU, browser WASM and on the Node server`, async () => {
      const expected = serverText.get(id)!;
      assert.ok(expected.length > 0);
      const residentBefore = await page.evaluate(() => (globalThis as unknown as { ferry: PageApi }).ferry.gpuResidentFeeds());
      const gpu = await runIn(page, id, 'webgpu', 1);
      assert.equal(gpu.loaded.device, 'webgpu');
      // Each decode step after the first feeds the previous step's state from GPU buffers (2 layers x 2 tensors).
      const resident = (await page.evaluate(() => (globalThis as unknown as { ferry: PageApi }).ferry.gpuResidentFeeds())) - residentBefore;
      assert.ok(resident >= (REQUEST.max_tokens - 2) * 4, `${resident} state inputs stayed on the GPU`);
      assert.equal(gpu.loaded.notice, null);
      assert.equal(gpu.run.text, expected);
      assert.equal(gpu.run.tokens, REQUEST.max_tokens);
      const wasm = await runIn(page, id, 'wasm', 2);
      assert.deepEqual([wasm.loaded.device, wasm.loaded.threads], ['wasm', 2]);
      assert.equal(wasm.run.text, expected);
      assert.ok(wasm.run.tokensPerSecond > 0);
      assert.equal(await page.locator('#output').textContent(), expected);
      assert.match((await page.locator('#speed').textContent())!, /in this browser \(wasm\): 12 tokens in .* tokens\/s/);
    });
  }

  test('"on the server" streams the same text through /v1/completions; a screenshot is kept', async () => {
    const streamed = await page.evaluate((request) => (globalThis as unknown as { ferry: PageApi }).ferry.runServer(request), REQUEST);
    assert.equal(streamed.text, serverText.get('tiny-transformer'));
    assert.equal(streamed.tokens, REQUEST.max_tokens);
    await mkdir('test-artifacts', { recursive: true });
    await page.screenshot({ path: 'test-artifacts/playground.png', fullPage: true });
  });

  test('without WebGPU the page runs on WASM and says so', async () => {
    const plain = await launchChromium({ webgpu: false });
    try {
      const other = await openPlayground(plain, server.url);
      const { loaded, run } = await runIn(other, 'tiny-lstm', 'auto', 1);
      assert.equal(loaded.device, 'wasm');
      assert.match(loaded.notice ?? '', /WebGPU is not available/);
      assert.equal(await other.locator('#notice').isVisible(), true);
      assert.match((await other.locator('#notice').textContent())!, /running on WASM instead/);
      assert.equal(run.text, serverText.get('tiny-lstm'));
    } finally {
      await plain.close();
    }
  });

  test('a model the server does not list fails with a clear message on the page', async () => {
    const message = await page.evaluate(async () => {
      const ferry = (globalThis as unknown as { ferry: PageApi }).ferry;
      await ferry.select('tiny-lstm', 'wasm', 1);
      const select = document.getElementById('model') as HTMLSelectElement;
      select.add(new Option('missing', 'missing'));
      select.value = 'missing';
      return ferry.runBrowser().then(() => 'no error', (error: Error) => error.message);
    });
    assert.match(message, /no model named "missing"/);
    assert.match((await page.locator('#error').textContent())!, /no model named "missing"/);
  });
});

describe('browser: the shipped models', { skip: skip ?? (SHIPPED.length ? false : 'models/ holds no packages') }, () => {
  const request = { prompt: 'ROMEO:', max_tokens: 8, temperature: 0 };

  test('greedy text from models/ is the same in browser WebGPU, browser WASM and on the Node server', async () => {
    const server = await startNodeServer(SHIPPED);
    const browser = await launchChromium();
    try {
      const page = await openPlayground(browser, server.url);
      for (const model of server.models) {
        const { status, json } = await completeOnServer(server.url, { ...request, model: model.id });
        assert.equal(status, 200);
        const expected = json.choices[0].text as string;
        assert.match(expected, /^[\x20-\x7e\n]+$/, `${model.id} writes plain text, got ${JSON.stringify(expected)}`);
        const gpu = await runIn(page, model.id, 'webgpu', 1, request);
        assert.deepEqual([gpu.loaded.device, gpu.run.text], ['webgpu', expected], `${model.id} on WebGPU`);
        const wasm = await runIn(page, model.id, 'wasm', 1, request);
        assert.deepEqual([wasm.loaded.device, wasm.run.text], ['wasm', expected], `${model.id} on WASM`);
      }
    } finally {
      await browser.close();
      await server.close();
    }
  });
});
