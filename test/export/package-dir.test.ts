/** The package dir as a user meets it: named after itself, with the permissions of any dir they make. */
import assert from 'node:assert/strict';
import { mkdirSync, statSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { test } from 'node:test';
import { exportModel } from '../../src/export/index.ts';
import { loadPackage } from '../../src/serve/package.ts';
import { makeCheckpoint, tempDir, TINY_LSTM } from './fixtures.ts';

test('an exported package is named after its dir (runs/x exported to models/my-lstm serves as my-lstm) and follows the umask', async () => {
  const { dir: checkpoint } = await makeCheckpoint(TINY_LSTM);
  const parent = await tempDir();
  const outDir = path.join(parent, 'my-lstm');
  const lines: string[] = [];
  await exportModel({ source: checkpoint, outDir, verify: false, log: (line) => lines.push(line) });
  assert.equal(lines[0], `checkpoint ${checkpoint} (step 0)`, 'the log says which checkpoint the package comes from');
  const manifest = JSON.parse(await readFile(path.join(outDir, 'ferry.json'), 'utf8')) as { name: string };
  assert.equal(manifest.name, 'my-lstm');
  assert.equal((await loadPackage(outDir)).id, 'my-lstm');

  const reference = path.join(parent, 'made-by-the-user');
  mkdirSync(reference);
  assert.equal(statSync(outDir).mode & 0o777, statSync(reference).mode & 0o777);
  assert.equal(statSync(path.join(outDir, 'onnx')).mode & 0o777, statSync(reference).mode & 0o777);

  await exportModel({ source: checkpoint, outDir, verify: false, name: 'chosen' });
  assert.equal(JSON.parse(await readFile(path.join(outDir, 'ferry.json'), 'utf8')).name, 'chosen');
});
