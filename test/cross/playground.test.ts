// The playground as a person meets it, in headless Chromium over the shipped models: a status line
// that says what is selected, a labelled loss chart, readable parity figures, text that streams
// in, an empty max_tokens meaning the model's default, and errors right under the buttons.
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { after, before, describe, test } from 'node:test';
import type { Browser, Page } from 'playwright-core';
import { chromiumMissing, launchChromium, startNodeServer, type NodeServer } from './harness.ts';

const MODEL = 'models/shakespeare-lstm';
const skip = chromiumMissing() ?? (existsSync(`${MODEL}/metrics.jsonl`) ? null : `${MODEL} is absent; skipping the playground page test`);
if (skip) console.log(`# skip: ${skip}`);

describe('playground page', { skip: skip ?? false }, () => {
  let server: NodeServer;
  let browser: Browser;
  let page: Page;

  before(async () => {
    server = await startNodeServer([MODEL]);
    browser = await launchChromium({ webgpu: false });
    page = await browser.newPage();
    await page.goto(server.url);
    await page.waitForFunction(() => 'ferry' in globalThis);
    await page.evaluate(() => (globalThis as unknown as { ferry: { ready: Promise<void> } }).ferry.ready);
  });

  after(async () => {
    await browser?.close();
    await server?.close();
  });

  test('the status line names the selected model, not "pick a model"', async () => {
    assert.equal(await page.locator('#status').textContent(), 'shakespeare-lstm (lstm): ready; it downloads to this browser on the first run here');
    assert.equal(await page.locator('#error').isVisible(), false);
  });

  test('the loss chart has labelled axes with values, a legend and the final losses', async () => {
    const chart = page.locator('#loss svg');
    const texts = await chart.locator('text').allTextContents();
    assert.ok(texts.includes('step') && texts.includes('loss (nats/token)') && texts.includes('train') && texts.includes('val'), texts.join(' | '));
    assert.match(texts[0]!, /^final loss: train \d\.\d{3}, val \d\.\d{3}$/);
    const xTicks = (await chart.locator('text.x-tick').allTextContents()).map(Number);
    const yTicks = (await chart.locator('text.y-tick').allTextContents()).map(Number);
    assert.ok(xTicks.length >= 3 && xTicks.at(-1)! >= 2000, `x ticks ${xTicks}`);
    assert.ok(yTicks.length >= 3 && yTicks.every(Number.isFinite), `y ticks ${yTicks}`);
  });

  test('parity figures are readable: 6.7e-6, not 0.00000667572021484375', async () => {
    const { parity } = JSON.parse(readFileSync(`${MODEL}/ferry.json`, 'utf8')) as {
      parity: { fp32: { maxAbsDiff: number; tolerance: number }; int8: { perplexity: number; perplexityChange: number; bytes: number; fp32Bytes: number } };
    };
    const cells = await page.locator('#parity td').allTextContents();
    const change = parity.int8.perplexityChange * 100;
    for (const expected of [
      parity.fp32.maxAbsDiff.toExponential(1).replace(/\.0e/, 'e'), parity.fp32.tolerance.toExponential(1).replace(/\.0e/, 'e'),
      `${parity.int8.perplexity.toFixed(3)} (${change >= 0 ? '+' : ''}${change.toFixed(2)}% vs fp32)`,
      `${(parity.int8.bytes / 1e6).toFixed(2)} MB`, `${(parity.int8.fp32Bytes / 1e6).toFixed(2)} MB`,
    ]) assert.ok(cells.includes(expected), `${expected} in ${cells.join(' | ')}`);
    assert.ok(cells.includes('1e-4'), cells.join(' | '));
    assert.ok(cells.every((cell) => !/\d{6}/.test(cell)), `no long raw floats: ${cells.join(' | ')}`);
  });

  test('an empty max_tokens asks for the model\'s default; the text streams in as it arrives', async () => {
    const run = await page.evaluate(async () => {
      (document.getElementById('max_tokens') as HTMLInputElement).value = '';
      (document.getElementById('temperature') as HTMLInputElement).value = '0';
      const output = document.getElementById('output')!;
      const lengths: number[] = [];
      const observer = new MutationObserver(() => lengths.push(output.textContent!.length));
      observer.observe(output, { childList: true, characterData: true, subtree: true });
      const result = await (globalThis as unknown as { ferry: { runServer(): Promise<{ text: string; tokens: number }> } }).ferry.runServer();
      observer.disconnect();
      return { ...result, lengths, shown: output.textContent };
    });
    assert.equal(run.tokens, 200, 'the manifest\'s generation.maxTokens');
    assert.equal(run.shown, run.text);
    assert.ok(new Set(run.lengths).size > 5, `the output grew in ${new Set(run.lengths).size} steps`);
    assert.match((await page.locator('#status').textContent())!, /done on the server/);
  });

  test('a refused request shows its message right under the buttons', async () => {
    await page.evaluate(async () => {
      (document.getElementById('temperature') as HTMLInputElement).value = '9';
      await (globalThis as unknown as { ferry: { runServer(): Promise<unknown> } }).ferry.runServer().catch(() => {});
    });
    const error = page.locator('#error');
    assert.equal(await error.isVisible(), true);
    assert.match((await error.textContent())!, /temperature/);
    const [buttons, box] = await Promise.all([page.locator('#run_server').boundingBox(), error.boundingBox()]);
    assert.ok(box!.y > buttons!.y && box!.y - buttons!.y < 80, `the error is ${box!.y - buttons!.y}px below the buttons`);
    assert.match((await page.locator('#status').textContent())!, /failed: see the message below the buttons/);
  });
});
