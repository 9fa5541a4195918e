// The playground of `ferry serve --api-key` in headless Chromium (issue #14): the page loads
// without the key and says the server has one; a request made without it shows the server's 401
// message under the buttons; once the key is typed, every fetch the page makes (the package list,
// metrics.jsonl, /v1/completions, the model files the browser run downloads) carries it.
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { after, before, describe, test } from 'node:test';
import type { Browser, Page } from 'playwright-core';
import { startServer, type RunningServer } from '../../src/serve/node.ts';
import { chromiumMissing, launchChromium } from './harness.ts';

const MODEL = 'models/shakespeare-lstm';
const KEY = 'open-sesame-14';
const skip = chromiumMissing() ?? (existsSync(`${MODEL}/ferry.json`) ? null : `${MODEL} is absent; skipping the playground key test`);
if (skip) console.log(`# skip: ${skip}`);

type Ferry = { ferry: { ready: Promise<void>; runServer(o?: Record<string, unknown>): Promise<{ text: string; tokens: number }>; load(): Promise<{ device: string }> } };

describe('playground with --api-key', { skip: skip ?? false }, () => {
  let server: RunningServer;
  let browser: Browser;
  let page: Page;
  /** Every request the page made to the server: its path and the Authorization header it sent. */
  const requests: { path: string; authorization: string | undefined }[] = [];

  before(async () => {
    server = await startServer({ dirs: [MODEL], port: 0, host: '127.0.0.1', maxBatch: 2, maxQueue: 4, device: 'cpu', log: () => {}, apiKey: KEY });
    await server.models;
    browser = await launchChromium({ webgpu: false });
    page = await browser.newPage();
    page.on('request', (request) => {
      const url = new URL(request.url());
      if (url.origin === server.url) requests.push({ path: url.pathname, authorization: request.headers().authorization });
    });
    await page.goto(server.url);
    await page.waitForFunction(() => 'ferry' in globalThis);
    await page.evaluate(() => (globalThis as unknown as Ferry).ferry.ready);
  });

  after(async () => {
    await browser?.close();
    await server?.close();
  });

  test('without the key the page loads, says the server has a key, and a run shows the 401 message under the buttons', async () => {
    assert.equal(await page.locator('#status').textContent(), 'this server has an API key: type it into the "API key" field');
    assert.equal(await page.locator('#model option').count(), 0, 'no package is listed without the key');
    await page.locator('#run_server').click();
    const error = page.locator('#error');
    await error.waitFor({ state: 'visible' });
    assert.equal(await error.textContent(), 'a valid API key is required: send `Authorization: Bearer <key>`', "the server's 401 message");
    assert.match((await page.locator('#status').textContent())!, /failed: see the message below the buttons/);
    const completions = requests.filter((r) => r.path === '/v1/completions');
    assert.equal(completions.length, 1);
    assert.equal(completions[0]!.authorization, undefined);
  });

  test('a wrong key is refused with its own 401 message', async () => {
    await page.locator('#api_key').fill('not-the-key');
    await page.locator('#api_key').press('Tab');
    await page.locator('#run_server').click();
    await page.waitForFunction(() => /failed/.test(document.getElementById('status')!.textContent!));
    assert.equal(await page.locator('#error').textContent(), 'the API key is not valid');
    assert.equal(requests.filter((r) => r.path === '/v1/completions').at(-1)!.authorization, 'Bearer not-the-key');
  });

  test('with the key typed the page lists the model, draws its loss chart, and generates on the server and in the browser', async () => {
    const before = requests.length;
    await page.locator('#api_key').fill(KEY);
    await page.locator('#api_key').press('Tab');
    await page.waitForFunction(() => /shakespeare-lstm \(lstm\): ready/.test(document.getElementById('status')!.textContent!));
    assert.equal(await page.locator('#model').inputValue(), 'shakespeare-lstm');
    assert.ok(await page.locator('#loss svg').count(), 'metrics.jsonl was fetched with the key');
    await page.evaluate(() => {
      (document.getElementById('temperature') as HTMLInputElement).value = '0';
      (document.getElementById('max_tokens') as HTMLInputElement).value = '24';
    });
    const run = await page.evaluate(() => (globalThis as unknown as Ferry).ferry.runServer());
    assert.equal(run.tokens, 24);
    assert.ok(run.text.length > 0);
    assert.equal(await page.locator('#output').textContent(), run.text);
    assert.equal(await page.locator('#error').isVisible(), false);
    // The browser run downloads the package's files (the weights too) with the key.
    const loaded = await page.evaluate(() => (globalThis as unknown as Ferry).ferry.load());
    assert.equal(loaded.device, 'wasm');
    // The page and onnxruntime-web's own code (/ferry/ort/) hold no model data and are open; the rest needs the key.
    const sent = requests.slice(before).filter((r) => r.path !== '/' && r.path !== '/ferry/playground.js' && !r.path.startsWith('/ferry/ort/'));
    for (const path of ['/ferry/models', '/ferry/models/shakespeare-lstm/metrics.jsonl', '/v1/completions', '/ferry/models/shakespeare-lstm/onnx/model.onnx']) {
      assert.ok(sent.some((r) => r.path === path), `the page fetched ${path}: ${sent.map((r) => r.path).join(', ')}`);
    }
    for (const r of sent) assert.equal(r.authorization, `Bearer ${KEY}`, `${r.path} carried the key`);
  });
});
