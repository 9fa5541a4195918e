// The playground page's script (bundled by bundle.ts). It runs a package in this tab through
// the browser client, or streams the same request from the server's /v1/completions.
import { generateInBrowser, loadBrowserModel, type BrowserDevice, type BrowserModel } from '../browser/client.ts';
import { gpuResidentFeeds } from '../browser/runtime.ts';
import type { Precision } from '../../package/index.ts';

interface ModelInfo {
  id: string;
  arch: string;
  url: string;
  parity: Record<string, { maxAbsDiff?: number; tolerance?: number; perplexityChange?: number; bytes?: number }> | null;
  training: { step?: number; valLoss?: number | null } | null;
  hasMetrics: boolean;
  files: Record<string, string | null | undefined>;
}

export interface RunResult {
  where: 'browser' | 'server';
  device: string;
  text: string;
  tokens: number;
  seconds: number;
  tokensPerSecond: number;
}

const $ = <T extends HTMLElement>(id: string) => document.getElementById(id) as T;
const models = new Map<string, ModelInfo>();
let loaded: { key: string; browser: BrowserModel } | undefined;

function fields(): Record<string, unknown> {
  const number = (id: string) => Number($<HTMLInputElement>(id).value);
  return {
    prompt: $<HTMLTextAreaElement>('prompt').value,
    max_tokens: number('max_tokens'),
    temperature: number('temperature'),
    top_k: number('top_k'),
    top_p: number('top_p'),
    seed: number('seed'),
  };
}

function show(result: RunResult): RunResult {
  $('speed').textContent = `${result.where === 'browser' ? `in this browser (${result.device})` : 'on the server'}: ${result.tokens} tokens in ${result.seconds.toFixed(2)} s = ${result.tokensPerSecond.toFixed(1)} tokens/s`;
  return result;
}

function fail(error: unknown): never {
  $('error').textContent = error instanceof Error ? `${error.message}${(error as { hint?: string }).hint ? `\n${(error as { hint?: string }).hint}` : ''}` : String(error);
  throw error;
}

async function load(id: string, device: BrowserDevice, threads: number): Promise<BrowserModel> {
  const precision = $<HTMLSelectElement>('precision').value as Precision;
  const key = `${id}/${device}/${threads}/${precision}`;
  if (loaded?.key === key) return loaded.browser;
  await loaded?.browser.model.close();
  loaded = undefined;
  const info = models.get(id) ?? fail(new Error(`no model named "${id}"`));
  const progress = $<HTMLProgressElement>('progress');
  progress.hidden = false;
  $('status').textContent = `downloading ${id}…`;
  const browser = await loadBrowserModel(info.url, {
    device,
    precision,
    threads,
    onProgress: ({ loaded: done, total }) => {
      progress.max = total ?? Math.max(done, 1);
      progress.value = done;
      $('status').textContent = `downloading ${id}: ${(done / 1e6).toFixed(2)}${total ? ` of ${(total / 1e6).toFixed(2)}` : ''} MB`;
    },
    log: (message) => console.info(`ferry: ${message}`),
  }).catch(fail);
  progress.hidden = true;
  const notice = $('notice');
  notice.textContent = browser.notice ?? '';
  notice.style.display = browser.notice ? 'block' : 'none';
  $('status').textContent = `${id} (${precision}) loaded on ${browser.device === 'webgpu' ? 'WebGPU' : `WASM (${browser.threads} thread${browser.threads > 1 ? 's' : ''})`}`;
  loaded = { key, browser };
  return browser;
}

async function runBrowser(overrides: Record<string, unknown> = {}): Promise<RunResult> {
  $('error').textContent = '';
  const device = $<HTMLSelectElement>('device').value as BrowserDevice;
  const browser = await load($<HTMLSelectElement>('model').value, device, Number($<HTMLInputElement>('threads').value) || 1);
  const output = $('output');
  output.textContent = '';
  const where = `in this browser (${browser.device})`;
  const run = await generateInBrowser(browser.model, { ...fields(), ...overrides }, (text, { tokens, seconds }) => {
    output.textContent += text;
    $('speed').textContent = `${where}: ${tokens} tokens, ${(tokens / seconds).toFixed(1)} tokens/s…`;
  }).catch(fail);
  return show({ where: 'browser', device: browser.device, ...run, tokensPerSecond: run.tokens / run.seconds });
}

async function runServer(overrides: Record<string, unknown> = {}): Promise<RunResult> {
  $('error').textContent = '';
  const output = $('output');
  output.textContent = '';
  const key = $<HTMLInputElement>('api_key').value;
  const started = performance.now();
  const response = await fetch('/v1/completions', {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...(key ? { authorization: `Bearer ${key}` } : {}) },
    body: JSON.stringify({ model: $<HTMLSelectElement>('model').value, ...fields(), ...overrides, stream: true, stream_options: { include_usage: true } }),
  });
  if (!response.ok || !response.body) fail(new Error(((await response.json()) as { error: { message: string } }).error.message));
  let text = '';
  let tokens = 0;
  let chunks = 0;
  let buffer = '';
  const reader = response.body!.pipeThrough(new TextDecoderStream()).getReader();
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    buffer += value;
    const events = buffer.split('\n\n');
    buffer = events.pop()!;
    for (const event of events) {
      const data = event.replace(/^data: /, '');
      if (data === '[DONE]') continue;
      const chunk = JSON.parse(data) as { choices: { text: string }[]; usage?: { completion_tokens: number }; error?: { message: string } };
      if (chunk.error) fail(new Error(chunk.error.message));
      for (const choice of chunk.choices) text += choice.text;
      output.textContent = text;
      chunks += chunk.choices.length;
      $('speed').textContent = `on the server: ~${chunks} tokens, ${(chunks / ((performance.now() - started) / 1000)).toFixed(1)} tokens/s…`;
      if (chunk.usage) tokens = chunk.usage.completion_tokens;
    }
  }
  const seconds = (performance.now() - started) / 1000;
  return show({ where: 'server', device: 'server', text, tokens, seconds, tokensPerSecond: tokens / seconds });
}

async function showModel(info: ModelInfo): Promise<void> {
  const precision = $<HTMLSelectElement>('precision');
  precision.replaceChildren(...Object.entries(info.files).filter(([, file]) => file).map(([p]) => new Option(p, p)));
  const parity = info.parity ?? {};
  $('parity').innerHTML = Object.keys(parity).length
    ? `<table><tr><th>file</th><th>max |Δ logits|</th><th>tolerance</th><th>perplexity change</th><th>bytes</th></tr>${Object.entries(parity).map(([file, p]) =>
      `<tr><td>${file}</td><td>${p.maxAbsDiff ?? ''}</td><td>${p.tolerance ?? ''}</td><td>${p.perplexityChange ?? ''}</td><td>${p.bytes ?? ''}</td></tr>`).join('')}</table>`
    : 'exported without verification';
  const metrics = info.hasMetrics ? await fetch(`${info.url}/metrics.jsonl`) : undefined;
  const points = metrics?.ok
    ? (await metrics.text()).split('\n').filter(Boolean).map((line) => JSON.parse(line) as { type: string; step: number; loss?: number; valLoss?: number })
    : [];
  const train = points.filter((p) => p.type === 'train' && p.loss != null).map((p) => [p.step, p.loss!] as const);
  const val = points.filter((p) => p.type === 'eval' && p.valLoss != null).map((p) => [p.step, p.valLoss!] as const);
  $('loss').innerHTML = train.length ? lossSvg(train, val) : info.training?.valLoss != null ? `val loss ${info.training.valLoss.toFixed(3)} after ${info.training.step} steps (no metrics.jsonl in the package)` : 'no training record';
}

function lossSvg(train: readonly (readonly [number, number])[], val: readonly (readonly [number, number])[]): string {
  const all = [...train, ...val];
  const [maxStep, minLoss, maxLoss] = [Math.max(...all.map((p) => p[0])) || 1, Math.min(...all.map((p) => p[1])), Math.max(...all.map((p) => p[1]))];
  const xy = ([step, loss]: readonly [number, number]) => `${(20 + (step / maxStep) * 280).toFixed(1)},${(10 + (1 - (loss - minLoss) / (maxLoss - minLoss || 1)) * 130).toFixed(1)}`;
  return `<svg width="310" height="160" viewBox="0 0 310 160"><polyline fill="none" stroke="#36c" points="${train.map(xy).join(' ')}"/><polyline fill="none" stroke="#c33" points="${val.map(xy).join(' ')}"/>` +
    `<text x="20" y="155" font-size="10">step 0 … ${maxStep}; loss ${minLoss.toFixed(2)} … ${maxLoss.toFixed(2)} (blue train, red val)</text></svg>`;
}

async function start(): Promise<void> {
  const list = (await (await fetch('/ferry/models')).json()) as { models: ModelInfo[] };
  const select = $<HTMLSelectElement>('model');
  for (const info of list.models) {
    models.set(info.id, info);
    select.add(new Option(`${info.id} (${info.arch})`, info.id));
  }
  if (!list.models.length) $('status').textContent = 'the server has no models';
  select.addEventListener('change', () => void showModel(models.get(select.value)!));
  if (list.models[0]) await showModel(list.models[0]);
  $('run_browser').addEventListener('click', () => void runBrowser().catch(() => {}));
  $('run_server').addEventListener('click', () => void runServer().catch(() => {}));
}

/** For scripts and tests driving the page. */
const api = {
  ready: start(),
  async select(id: string, device: BrowserDevice = 'auto', threads = 1, precision: Precision = 'fp32') {
    $<HTMLSelectElement>('model').value = id;
    $<HTMLSelectElement>('device').value = device;
    $<HTMLInputElement>('threads').value = String(threads);
    await showModel(models.get(id)!);
    $<HTMLSelectElement>('precision').value = precision;
  },
  load: () => load($<HTMLSelectElement>('model').value, $<HTMLSelectElement>('device').value as BrowserDevice, Number($<HTMLInputElement>('threads').value) || 1)
    .then((b) => ({ device: b.device, threads: b.threads, notice: b.notice, provider: b.model.provider })),
  runBrowser,
  runServer,
  gpuResidentFeeds,
};
(globalThis as { ferry?: typeof api }).ferry = api;
