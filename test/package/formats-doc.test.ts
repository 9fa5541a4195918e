import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { test } from 'node:test';
import { FORMATS_MD, withGeneratedTable } from '../../scripts/formats-doc.ts';

test("docs/FORMATS.md's ferry.json table is the one generated from the schema", async () => {
  const markdown = await readFile(FORMATS_MD, 'utf8');
  assert.equal(markdown, withGeneratedTable(markdown), 'run `node --import tsx scripts/formats-doc.ts` after changing src/package/manifest.ts');
});
