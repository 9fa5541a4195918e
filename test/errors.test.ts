import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ERROR_CODES, FerryError } from '../src/errors.ts';

test('FerryError carries code, hint and status, and prints both lines', () => {
  const error = new FerryError('corpus_not_found', 'corpus not found: a.txt', { hint: 'pass --corpus PATH', status: 404 });
  assert.equal(error.code, 'corpus_not_found');
  assert.equal(error.status, 404);
  assert.equal(error.toUserMessage(), 'corpus not found: a.txt\n  pass --corpus PATH');
  assert.ok(error instanceof Error);
});

test('FerryError defaults to status 400 and a one-line message without a hint', () => {
  const error = new FerryError('bad_input', 'bad input');
  assert.equal(error.status, 400);
  assert.equal(error.toUserMessage(), 'bad input');
});

test('error codes have one casing (lower snake case) and are listed once', () => {
  for (const code of ERROR_CODES) assert.match(code, /^[a-z][a-z0-9]*(_[a-z0-9]+)*$/, code);
  assert.equal(new Set(ERROR_CODES).size, ERROR_CODES.length);
  assert.deepEqual([...ERROR_CODES], [...ERROR_CODES].sort());
});
