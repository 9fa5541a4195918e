// SIGTERM as Kubernetes sends it: /readyz turns 503 at once, new requests get 503, running
// streams finish within --drain-seconds, exit 0; and a rolling restart of two replicas behind
// Debian's nginx loses no request.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { buildPackages, type TestPackages } from './packages.ts';

const ferry = path.resolve('bin/ferry.js');
const NGINX = '/usr/sbin/nginx';
let packages: TestPackages;

before(async () => {
  packages = await buildPackages();
});

after(async () => {
  await packages.remove();
});

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = net.createServer().listen(0, '127.0.0.1', () => {
      const { port } = probe.address() as net.AddressInfo;
      probe.close(() => resolve(port));
    }).on('error', reject);
  });
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

interface Replica {
  child: ChildProcess;
  exited: Promise<number | null>;
  stderr: () => string;
}

async function startReplica(port: number, extra: string[] = []): Promise<Replica> {
  const child = spawn('node', [ferry, 'serve', packages.lstm, '--port', String(port), '--device', 'cpu', ...extra], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr!.on('data', (d) => (stderr += d));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  for (let tries = 0; ; tries++) {
    const ready = await fetch(`http://127.0.0.1:${port}/readyz`).then((r) => r.status === 200, () => false);
    if (ready) break;
    if (child.exitCode !== null || tries > 600) throw new Error(`ferry serve did not get ready:\n${stderr}`);
    await sleep(50);
  }
  return { child, exited, stderr: () => stderr };
}

const completion = (base: string, body: object) => fetch(`${base}/v1/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ model: 'tiny-lstm', ...body }) });

test('SIGTERM: /readyz and new requests answer 503 at once, the running stream finishes whole, then exit 0', async () => {
  const port = await freePort();
  const base = `http://127.0.0.1:${port}`;
  const replica = await startReplica(port, ['--drain-seconds', '20']);
  const res = await completion(base, { prompt: 'to be', max_tokens: 1500, ignore_eos: true, stream: true });
  const reader = res.body!.pipeThrough(new TextDecoderStream()).getReader();
  let text = (await reader.read()).value ?? '';
  replica.child.kill('SIGTERM');
  let readyz = 200;
  for (let tries = 0; tries < 100 && readyz === 200; tries++) readyz = await fetch(`${base}/readyz`).then((r) => r.status);
  assert.equal(readyz, 503);
  const refused = await completion(base, { prompt: 'x', max_tokens: 2 });
  assert.equal(refused.status, 503);
  assert.equal((await refused.json()).error.code, 'draining');
  assert.equal((await fetch(`${base}/healthz`)).status, 200, 'alive while it drains');
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    text += value;
  }
  assert.ok(text.endsWith('data: [DONE]\n\n'), 'the stream ended whole');
  assert.equal(text.split('"finish_reason":"length"').length, 2);
  assert.equal(await replica.exited, 0);
  assert.match(replica.stderr(), /SIGTERM: draining/);
});

test('SIGTERM: a stream that outlasts --drain-seconds is cut when it is over, and the server still exits 0', async () => {
  const port = await freePort();
  const replica = await startReplica(port, ['--drain-seconds', '1', '--max-tokens-limit', '10000000']);
  const res = await completion(`http://127.0.0.1:${port}`, { prompt: 'to be', max_tokens: 10_000_000, ignore_eos: true, stream: true });
  const reader = res.body!.getReader();
  await reader.read();
  const signalled = Date.now();
  replica.child.kill('SIGTERM');
  let received = '';
  const cut = await (async () => {
    try {
      for (;;) {
        const { value, done } = await reader.read();
        if (done) return !received.endsWith('data: [DONE]\n\n');
        received += new TextDecoder().decode(value);
      }
    } catch {
      return true;
    }
  })();
  assert.ok(cut, 'the stream was cut, not finished');
  assert.equal(await replica.exited, 0);
  const took = Date.now() - signalled;
  assert.ok(took >= 900 && took < 10_000, `exited ${took} ms after SIGTERM`);
});

const nginxConfig = (dir: string, listen: number, upstreams: number[]) => `
daemon off;
worker_processes 1;
pid ${dir}/nginx.pid;
error_log ${dir}/error.log warn;
events { worker_connections 256; }
http {
  access_log off;
  client_body_temp_path ${dir}/body;
  proxy_temp_path ${dir}/proxy;
  fastcgi_temp_path ${dir}/fastcgi;
  uwsgi_temp_path ${dir}/uwsgi;
  scgi_temp_path ${dir}/scgi;
  upstream ferry {
    ${upstreams.map((port) => `server 127.0.0.1:${port} max_fails=0;`).join('\n    ')}
  }
  server {
    listen 127.0.0.1:${listen};
    location / {
      proxy_pass http://ferry;
      proxy_http_version 1.1;
      proxy_set_header Host $host;
      proxy_buffering off;
      # A replica that is draining answers 503; one that is gone refuses the connection: both go to the other.
      proxy_next_upstream error timeout http_503 non_idempotent;
    }
  }
}
`;

test('a rolling restart of two replicas behind nginx under steady load fails no request', { skip: existsSync(NGINX) ? false : `${NGINX} is not installed (apt-get install nginx)` }, async () => {
  const dir = await mkdtemp(path.join(tmpdir(), 'ferry-nginx-'));
  const ports = [await freePort(), await freePort()];
  const listen = await freePort();
  const replicas = await Promise.all(ports.map((port) => startReplica(port, ['--drain-seconds', '20'])));
  await writeFile(path.join(dir, 'nginx.conf'), nginxConfig(dir, listen, ports));
  const nginx = spawn(NGINX, ['-p', dir, '-c', path.join(dir, 'nginx.conf'), '-e', path.join(dir, 'error.log')], { stdio: 'ignore' });
  const base = `http://127.0.0.1:${listen}`;
  try {
    for (let tries = 0; !(await fetch(`${base}/healthz`).then((r) => r.ok, () => false)); tries++) {
      assert.ok(tries < 200, 'nginx did not start');
      await sleep(25);
    }
    let running = true;
    const failures: string[] = [];
    let succeeded = 0;
    const client = async (id: number) => {
      for (let i = 0; running; i++) {
        const stream = i % 2 === 1;
        try {
          const res = await completion(base, { prompt: `to be ${id}.${i}`, max_tokens: stream ? 200 : 24, ignore_eos: true, stream });
          const body = await res.text();
          if (res.status !== 200) failures.push(`${res.status} ${body.slice(0, 200)}`);
          else if (stream && !body.endsWith('data: [DONE]\n\n')) failures.push(`a stream broke off: ${body.slice(-200)}`);
          else succeeded++;
        } catch (error) {
          failures.push(String(error));
        }
      }
    };
    const load = Promise.all([0, 1, 2, 3].map(client));
    await sleep(500);
    for (let r = 0; r < replicas.length; r++) {
      replicas[r]!.child.kill('SIGTERM');
      assert.equal(await replicas[r]!.exited, 0, replicas[r]!.stderr());
      replicas[r] = await startReplica(ports[r]!, ['--drain-seconds', '20']);
      await sleep(500);
    }
    running = false;
    await load;
    assert.deepEqual(failures, []);
    assert.ok(succeeded > 20, `${succeeded} requests succeeded`);
  } finally {
    nginx.kill('SIGTERM');
    for (const replica of replicas) replica.child.kill('SIGTERM');
    await Promise.all(replicas.map((r) => r.exited));
    await rm(dir, { recursive: true, force: true });
  }
});
