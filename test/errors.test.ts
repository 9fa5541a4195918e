import { test } from 'node:test';
import assert from 'node:assert/strict';
import { FerryError } from '../src/errors.ts';

test('FerryError carries code, hint and status, and prints both lines', () => {
  const error = new FerryError('corpus_missing', 'corpus not found: a.txt', { hint: 'pass --corpus PATH', status: 404 });
  assert.equal(error.code, 'corpus_missing');
  assert.equal(error.status, 404);
  assert.equal(error.toUserMessage(), 'corpus not found: a.txt\n  pass --corpus PATH');
  assert.ok(error instanceof Error);
});

test('FerryError defaults to status 400 and a one-line message without a hint', () => {
  const error = new FerryError('bad', 'bad input');
  assert.equal(error.status, 400);
  assert.equal(error.toUserMessage(), 'bad input');
});
