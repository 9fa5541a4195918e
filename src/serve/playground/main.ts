// The playground page's script (bundled by bundle.ts). It runs a package in this tab through
// the browser client, or streams the same request from the server's /v1/completions.
import { generateInBrowser, loadBrowserModel, type BrowserDevice, type BrowserModel } from '../browser/client.ts';
import { gpuResidentFeeds } from '../browser/runtime.ts';
import type { Precision } from '../../package/index.ts';
import { lossChartSvg } from './chart.ts';

interface ModelInfo {
  id: string;
  arch: string;
  url: string;
  parity: Record<string, { maxAbsDiff?: number; tolerance?: number; perplexityChange?: number; perplexity?: number; bytes?: number; fp32Bytes?: number }> | null;
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

/** The key typed into the page, as headers for every request to a server that has one. */
function authorization(): Record<string, string> {
  const key = $<HTMLInputElement>('api_key').value;
  return key ? { authorization: `Bearer ${key}` } : {};
}

/** The request's fields; an empty number box is left out, so the model's default applies (not 0). */
function fields(): Record<string, unknown> {
  const request: Record<string, unknown> = { prompt: $<HTMLTextAreaElement>('prompt').value };
  for (const id of ['max_tokens', 'temperature', 'top_k', 'top_p', 'seed']) {
    const value = $<HTMLInputElement>(id).value.trim();
    if (value !== '') request[id] = Number(value);
  }
  return request;
}

function show(result: RunResult): RunResult {
  $('speed').textContent = `${result.where === 'browser' ? `in this browser (${result.device})` : 'on the server'}: ${result.tokens} tokens in ${result.seconds.toFixed(2)} s = ${result.tokensPerSecond.toFixed(1)} tokens/s`;
  return result;
}

/** Shows an error right under the buttons the user just pressed, and in the status line. */
function fail(error: unknown): never {
  const box = $('error');
  box.textContent = error instanceof Error ? `${error.message}${(error as { hint?: string }).hint ? `\n${(error as { hint?: string }).hint}` : ''}` : String(error);
  box.hidden = false;
  box.scrollIntoView({ block: 'nearest' });
  $('status').textContent = 'failed: see the message below the buttons';
  $<HTMLProgressElement>('progress').hidden = true;
  throw error;
}

function clearError(): void {
  $('error').textContent = '';
  $('error').hidden = true;
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
    headers: authorization(),
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
  clearError();
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
  clearError();
  const output = $('output');
  output.textContent = '';
  const started = performance.now();
  $('status').textContent = `${$<HTMLSelectElement>('model').value}: generating on the server…`;
  const response = await fetch('/v1/completions', {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...authorization() },
    body: JSON.stringify({ model: $<HTMLSelectElement>('model').value, ...fields(), ...overrides, stream: true, stream_options: { include_usage: true } }),
  }).catch((error: unknown) => fail(new Error(`the server did not answer: ${error instanceof Error ? error.message : String(error)}`)));
  if (!response.ok || !response.body) {
    const body = await response.text();
    let message = `the server answered ${response.status}`;
    try {
      message = (JSON.parse(body) as { error: { message: string } }).error.message;
    } catch {
      if (body) message += `: ${body.slice(0, 200)}`;
    }
    fail(new Error(message));
  }
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
  $('status').textContent = `${$<HTMLSelectElement>('model').value}: done on the server`;
  return show({ where: 'server', device: 'server', text, tokens, seconds, tokensPerSecond: tokens / seconds });
}

async function showModel(info: ModelInfo): Promise<void> {
  const precision = $<HTMLSelectElement>('precision');
  precision.replaceChildren(...Object.entries(info.files).filter(([, file]) => file).map(([p]) => new Option(p, p)));
  const parity = info.parity ?? {};
  // The fp32 entry records no size; the variants' entries record the fp32 file's.
  const fp32Bytes = Object.values(parity).find((p) => p.fp32Bytes !== undefined)?.fp32Bytes;
  $('parity').innerHTML = Object.keys(parity).length
    ? `<table><tr><th>file</th><th>largest logit difference vs tfjs</th><th>allowed</th><th>perplexity</th><th>size</th></tr>${Object.entries(parity).map(([file, p]) =>
      `<tr><td>${file}</td><td>${scientific(p.maxAbsDiff)}</td><td>${scientific(p.tolerance)}</td><td>${perplexity(p.perplexity, p.perplexityChange)}</td><td>${megabytes(p.bytes ?? (file === 'fp32' ? fp32Bytes : undefined))}</td></tr>`).join('')}</table>`
    : 'exported without verification';
  const metrics = info.hasMetrics ? await fetch(`${info.url}/metrics.jsonl`, { headers: authorization() }) : undefined;
  const points = metrics?.ok
    ? (await metrics.text()).split('\n').filter(Boolean).map((line) => JSON.parse(line) as { type: string; step: number; loss?: number; valLoss?: number })
    : [];
  const train = points.filter((p) => p.type === 'train' && p.loss != null).map((p) => [p.step, p.loss!] as const);
  const val = points.filter((p) => p.type === 'eval' && p.valLoss != null).map((p) => [p.step, p.valLoss!] as const);
  $('loss').innerHTML = train.length ? lossChartSvg(train, val) : info.training?.valLoss != null ? `val loss ${info.training.valLoss.toFixed(3)} after ${info.training.step} steps (no metrics.jsonl in the package)` : 'no training record';
  $('status').textContent = `${info.id} (${info.arch}): ready; it downloads to this browser on the first run here`;
}

/** 1.1e-5 rather than 0.000011444091796875. */
function scientific(value: number | undefined): string {
  if (value === undefined) return '';
  return value === 0 ? '0' : value.toExponential(1).replace(/\.0e/, 'e');
}

function perplexity(value: number | undefined, change: number | undefined): string {
  if (value === undefined) return change === undefined ? 'the reference' : '';
  return `${value.toFixed(3)}${change === undefined ? '' : ` (${change >= 0 ? '+' : ''}${(change * 100).toFixed(2)}% vs fp32)`}`;
}

function megabytes(bytes: number | undefined): string {
  return bytes === undefined ? '' : `${(bytes / 1e6).toFixed(2)} MB`;
}

/** Lists the server's packages; with an API key the list needs it, so typing the key lists them again. */
async function listModels(): Promise<void> {
  const response = await fetch('/ferry/models', { headers: authorization() });
  if (response.status === 401) {
    $('status').textContent = 'this server has an API key: type it into the "API key" field';
    return;
  }
  const list = (await response.json()) as { models: ModelInfo[] };
  $('status').textContent = list.models.length ? '' : 'the server has no models';
  const select = $<HTMLSelectElement>('model');
  select.replaceChildren();
  models.clear();
  for (const info of list.models) {
    models.set(info.id, info);
    select.add(new Option(`${info.id} (${info.arch})`, info.id));
  }
  clearError();
  if (list.models[0]) await showModel(list.models[0]);
}

async function start(): Promise<void> {
  await listModels();
  const select = $<HTMLSelectElement>('model');
  $('api_key').addEventListener('change', () => void listModels().catch(fail));
  select.addEventListener('change', () => void showModel(models.get(select.value)!));
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
