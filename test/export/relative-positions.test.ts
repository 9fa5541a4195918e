/**
 * RoPE and ALiBi Transformers export with their rotation / score bias in the graph: parity with
 * tfjs over full sequences, token by token, through the server's fixed cache, chunked prefill and
 * left padding, in the HF form (target webgpu) and the form with new_key_values.*.
 */
import assert from 'node:assert/strict';
import { access, readFile } from 'node:fs/promises';
import path from 'node:path';
import { test } from 'node:test';
import { exportModel } from '../../src/export/index.ts';
import type { ParityReport } from '../../src/export/verify.ts';
import { FerryError } from '../../src/errors.ts';
import { makeCheckpoint, tempDir, TINY_TRANSFORMER } from './fixtures.ts';

for (const positional of ['rope', 'alibi'] as const) {
  for (const target of ['cpu', 'webgpu'] as const) {
    test(`${positional}, target ${target}: every parity case within 1e-4, no position table, no gpt2 config.json`, async () => {
      const { dir } = await makeCheckpoint({ ...TINY_TRANSFORMER, nEmbd: 32, nHead: 4, positional }, { trainSteps: 10, seed: 3 });
      const outDir = path.join(await tempDir(), 'pkg');
      const report = await exportModel({ source: dir, outDir, target });
      const parity = report.parity.fp32 as ParityReport;
      const names = parity.cases.map((c) => c.name);
      for (const expected of ['random ids, batch 3', 'concat KV cache decode', 'chunked prefill', 'left-padded batch', ...(target === 'cpu' ? ['server slab cache decode'] : [])]) {
        assert.ok(names.some((name) => name.startsWith(expected)), `case ${expected} ran (${names.join('; ')})`);
      }
      for (const c of parity.cases) assert.ok(c.maxAbsDiff <= 1e-4, `${c.name}: ${c.maxAbsDiff}`);
      const manifest = JSON.parse(await readFile(path.join(outDir, 'ferry.json'), 'utf8'));
      assert.equal(manifest.model.positional, positional);
      await assert.rejects(access(path.join(outDir, 'config.json')), 'transformers.js would read a gpt2 config.json as learned positions');
      const graph = await readFile(path.join(outDir, 'onnx/model.onnx'));
      assert.equal(graph.includes(Buffer.from(positional === 'rope' ? 'rope_cos' : 'alibi_slopes')), true);
    });
  }
}

test('RoPE and ALiBi refuse the fused attention forms with a FerryError naming the flag', async () => {
  const { dir } = await makeCheckpoint({ ...TINY_TRANSFORMER, positional: 'rope' });
  const outDir = path.join(await tempDir(), 'pkg');
  await assert.rejects(exportModel({ source: dir, outDir, attention: 'mha' }), (error: unknown) =>
    error instanceof FerryError && /RoPE positions, which only the decomposed attention form carries \(got --attention mha\)/.test(error.message));
  await assert.rejects(access(outDir));
});
