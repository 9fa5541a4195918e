import { after, before, mock, test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { createApp, type AppOptions } from '../../src/serve/app.ts';
import { openModel, type ServedModel } from '../../src/serve/model.ts';
import { startServer } from '../../src/serve/node.ts';
import { mountPlayground } from '../../src/serve/playground/index.ts';
import { openRuntime } from '../../src/serve/runtime/index.ts';
import { buildPackages, type TestPackages } from './packages.ts';

let packages: TestPackages;
let models: ServedModel[];

before(async () => {
  packages = await buildPackages();
  const runtime = await openRuntime('cpu', () => {});
  models = [await openModel(packages.lstm, { runtime, maxBatch: 4, maxQueue: 4 })];
});

after(async () => {
  for (const model of models) await model.close();
  await packages.remove();
});

/** The app as `ferry serve` builds it: the API and the playground with the test package. */
async function served(options: Omit<AppOptions, 'models'> = {}) {
  const app = createApp({ models, ...options });
  await mountPlayground(app, { packages: [packages.lstm] });
  return app;
}

const bearer = (key: string) => ({ authorization: `Bearer ${key}` });
const PACKAGE_FILES = ['ferry.json', 'tokenizer.json', 'onnx/model.onnx', 'metrics.jsonl'].map((f) => `/ferry/models/tiny-lstm/${f}`);

test('with --api-key every route but /healthz and /readyz needs the key: the API, /metrics, the package list and its files (weights included)', async () => {
  const app = await served({ apiKey: 'sesame' });
  for (const probe of ['/healthz', '/readyz']) {
    assert.equal((await app.request(probe)).status, 200, probe);
    assert.equal((await app.request(probe, { method: 'HEAD' })).status, 200, `HEAD ${probe}`);
  }
  for (const path of ['/v1/models', '/v1/models/tiny-lstm', '/metrics', '/ferry/models', ...PACKAGE_FILES.slice(0, 3)]) {
    const refused = await app.request(path);
    assert.equal(refused.status, 401, path);
    assert.equal((await refused.json()).error.code, 'invalid_api_key', path);
    assert.match(refused.headers.get('www-authenticate') ?? '', /^Bearer/, path);
    assert.equal((await app.request(path, { method: 'HEAD' })).status, 401, `HEAD ${path}`);
    assert.equal((await app.request(path, { headers: bearer('wrong') })).status, 401, `${path} with a wrong key`);
    assert.equal((await app.request(path, { headers: bearer('sesame') })).status, 200, `${path} with the key`);
  }
  const completion = () => app.request('/v1/completions', { method: 'POST', headers: { 'content-type': 'application/json', ...bearer('sesame') }, body: JSON.stringify({ model: 'tiny-lstm', prompt: 'x', max_tokens: 2 }) });
  assert.equal((await completion()).status, 200);
  // The page itself holds no model data: it loads so that the key can be typed into it.
  assert.equal((await app.request('/')).status, 200);
});

test('unknown routes are 404 with a key or without, and with the wrong one', async () => {
  for (const app of [await served(), await served({ apiKey: 'sesame' })]) {
    for (const headers of [{}, bearer('wrong'), bearer('sesame')]) {
      for (const path of ['/nowhere', '/v1/chat/completions', '/ferryman']) {
        const res = await app.request(path, { headers });
        assert.equal(res.status, 404, path);
        assert.equal((await res.json()).error.code, 'not_found');
      }
    }
  }
});

test('--public-playground opens the playground and its package files on purpose; the API still needs the key', async () => {
  const app = await served({ apiKey: 'sesame', publicPlayground: true });
  for (const path of ['/', '/ferry/models', ...PACKAGE_FILES.slice(0, 3)]) assert.equal((await app.request(path)).status, 200, path);
  for (const path of ['/v1/models', '/metrics']) assert.equal((await app.request(path)).status, 401, path);
});

test('a malformed percent-escape in the path is a 400 naming it, with no stack trace in the log', async () => {
  const logged = mock.method(console, 'error', () => {});
  try {
    for (const app of [await served(), await served({ apiKey: 'sesame' })]) {
      for (const path of ['/ferry/models/tiny-lstm/%ZZ', '/ferry/models/tiny-lstm/%C0%AF', '/ferry/models/%E0%A4%A/ferry.json', '/v1/models/%ff']) {
        const res = await app.request(path);
        assert.equal(res.status, 400, path);
        const { error } = await res.json();
        assert.equal(error.code, 'invalid_path');
        assert.ok(error.message.includes(path), error.message);
      }
    }
    // An escape that decodes is served once decoded, never twice (%2541 is "%41", not "A").
    const app = await served();
    assert.equal((await app.request('/ferry/models/tiny-lstm/ferry%2Ejson')).status, 200);
    assert.equal((await app.request('/ferry/models/tiny-lstm/%25ZZ')).status, 404);
    assert.equal(logged.mock.callCount(), 0, 'nothing was logged');
  } finally {
    logged.mock.restore();
  }
});

test('HEAD and OPTIONS: HEAD answers as GET without a body; OPTIONS lists the methods of a route and 404s elsewhere', async () => {
  const app = await served({ apiKey: 'sesame' });
  const head = await app.request('/v1/models', { method: 'HEAD', headers: bearer('sesame') });
  assert.equal(head.status, 200);
  assert.equal(await head.text(), '');
  const options = await app.request('/v1/completions', { method: 'OPTIONS' });
  assert.equal(options.status, 204);
  assert.equal(options.headers.get('allow'), 'POST, OPTIONS');
  assert.equal((await app.request('/healthz', { method: 'OPTIONS' })).headers.get('allow'), 'GET, HEAD, OPTIONS');
  assert.equal((await app.request('/nowhere', { method: 'OPTIONS' })).status, 404);
  assert.equal((await app.request('/v1/completions', { method: 'GET' })).status, 404);
});

test('CORS is off by default; --cors-origin answers preflights before auth and labels answers for listed origins only', async () => {
  const closed = await served({ apiKey: 'sesame' });
  const none = await closed.request('/v1/models', { headers: { origin: 'https://app.example', ...bearer('sesame') } });
  assert.equal(none.headers.get('access-control-allow-origin'), null);

  const app = await served({ apiKey: 'sesame', corsOrigins: ['https://app.example', 'https://other.example'] });
  const preflight = await app.request('/v1/completions', {
    method: 'OPTIONS', headers: { origin: 'https://app.example', 'access-control-request-method': 'POST', 'access-control-request-headers': 'authorization, content-type' },
  });
  assert.equal(preflight.status, 204, 'a preflight carries no key and is answered anyway');
  assert.equal(preflight.headers.get('access-control-allow-origin'), 'https://app.example');
  assert.match(preflight.headers.get('access-control-allow-headers') ?? '', /authorization/i);
  assert.match(preflight.headers.get('access-control-allow-methods') ?? '', /POST/);
  const answer = await app.request('/v1/models', { headers: { origin: 'https://other.example', ...bearer('sesame') } });
  assert.equal(answer.status, 200);
  assert.equal(answer.headers.get('access-control-allow-origin'), 'https://other.example');
  const refused = await app.request('/v1/models', { headers: { origin: 'https://other.example' } });
  assert.equal(refused.status, 401, 'CORS is no way around the key');
  assert.equal(refused.headers.get('access-control-allow-origin'), 'https://other.example', 'so that the page can read why');
  const stranger = await app.request('/v1/models', { headers: { origin: 'https://evil.example', ...bearer('sesame') } });
  assert.equal(stranger.headers.get('access-control-allow-origin'), null);

  const any = await served({ corsOrigins: ['*'] });
  assert.equal((await any.request('/v1/models', { headers: { origin: 'https://evil.example' } })).headers.get('access-control-allow-origin'), '*');
});

/** A GET with a Host header of our choosing (fetch will not send one). */
function getWithHost(url: string, host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    http.get(url, { headers: { host } }, (res) => {
      res.resume();
      resolve(res.statusCode!);
    }).on('error', reject);
  });
}

test('on loopback without a key only loopback Host headers are answered (DNS rebinding), --allow-host adds more; with a key any Host', async () => {
  const log = () => {};
  const open = await startServer({ dirs: [packages.lstm], port: 0, host: '127.0.0.1', maxBatch: 2, maxQueue: 2, device: 'cpu', log, allowHosts: ['ferry.internal'] });
  const keyed = await startServer({ dirs: [packages.lstm], port: 0, host: '127.0.0.1', maxBatch: 2, maxQueue: 2, device: 'cpu', log, apiKey: 'sesame' });
  try {
    await Promise.all([open.models, keyed.models]);
    const port = new URL(open.url).port;
    for (const host of [`localhost:${port}`, `127.0.0.1:${port}`, `[::1]:${port}`, 'LOCALHOST', `ferry.internal:${port}`]) {
      assert.equal(await getWithHost(`${open.url}/v1/models`, host), 200, host);
    }
    for (const host of [`rebind.attacker.example:${port}`, 'localhost.attacker.example', `127.0.0.1.nip.io:${port}`]) {
      assert.equal(await getWithHost(`${open.url}/v1/models`, host), 403, host);
    }
    assert.equal(await getWithHost(`${keyed.url}/healthz`, 'rebind.attacker.example'), 200);
  } finally {
    await open.close();
    await keyed.close();
  }
});
