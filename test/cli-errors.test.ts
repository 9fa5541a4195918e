// The CLI's last line of defence (src/cli.ts): an error no check foresaw reaches the user as one
// line naming it and what to do, the trace only with FERRY_DEBUG=1.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const preload = fileURLToPath(new URL('./fixtures/throwing-commander.mjs', import.meta.url));

function ferry(env: Record<string, string>) {
  return spawnSync(process.execPath, ['--import', preload, 'bin/ferry.js', 'train'], { cwd: root, encoding: 'utf8', env: { ...process.env, ...env }, timeout: 60_000 });
}

test('an unforeseen error is one line and a hint, exit 1; FERRY_DEBUG=1 adds the trace', () => {
  const { FERRY_DEBUG: _, ...quiet } = process.env;
  const plain = spawnSync(process.execPath, ['--import', preload, 'bin/ferry.js', 'train'], { cwd: root, encoding: 'utf8', env: quiet, timeout: 60_000 });
  assert.equal(plain.status, 1);
  assert.deepEqual(plain.stderr.trim().split('\n'), [
    "ferry: internal error: Cannot read properties of undefined (reading 'x')",
    '  This is a ferry bug: run again with FERRY_DEBUG=1 for the full trace, and report it.',
  ]);
  const debug = ferry({ FERRY_DEBUG: '1' });
  assert.equal(debug.status, 1);
  assert.match(debug.stderr, /TypeError: Cannot read properties of undefined[\s\S]*\n\s+at /);
  assert.match(debug.stderr, /please report it with the trace above/);
});
