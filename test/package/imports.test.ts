/**
 * The module rule of docs/ARCHITECTURE.md, on the import graph: export and serve both import
 * the package contract (src/package), neither imports the other; the contract imports no Node
 * API, no tfjs and no ONNX Runtime; serving never reaches tfjs, not even through another module.
 */
import assert from 'node:assert/strict';
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { test } from 'node:test';

interface Reach {
  /** Every source file reached, the roots included. */
  files: Set<string>;
  /** Every bare specifier (a package or a node: builtin) imported on the way. */
  bare: Set<string>;
}

/** Follows static and dynamic relative imports from every .ts file under `root`. */
async function reach(root: string): Promise<Reach> {
  const files = new Set<string>();
  const bare = new Set<string>();
  const queue = (await readdir(root, { recursive: true })).filter((f) => f.endsWith('.ts')).map((f) => path.resolve(root, f));
  while (queue.length) {
    const file = queue.pop()!;
    if (files.has(file)) continue;
    files.add(file);
    const source = await readFile(file, 'utf8');
    const specs = [
      ...[...source.matchAll(/(?:^|\n)\s*(?:import|export)[^'"]*?from\s*'([^']+)'/g)].map((m) => m[1]!),
      ...[...source.matchAll(/import\('([^']+)'\)/g)].map((m) => m[1]!),
    ];
    for (const spec of specs) {
      if (spec.startsWith('.')) queue.push(path.resolve(path.dirname(file), spec));
      else bare.add(spec);
    }
  }
  return { files, bare };
}

const inStage = (files: Set<string>, stage: string) => [...files].filter((f) => f.includes(`${path.sep}src${path.sep}${stage}${path.sep}`));

test('the package contract imports no Node API, no tfjs, no ONNX Runtime and no stage', async () => {
  const { files, bare } = await reach('src/package');
  assert.deepEqual([...bare].sort(), ['zod'], 'the only package it imports is zod');
  const outside = [...files].filter((f) => !f.includes(`${path.sep}src${path.sep}package${path.sep}`)).map((f) => path.relative('src', f));
  assert.deepEqual(outside, ['errors.ts']);
});

test('serving code never imports tfjs, export or training, not even through another module', async () => {
  const { files, bare } = await reach('src/serve');
  assert.ok(inStage(files, 'tokenizer').length && inStage(files, 'package').length, 'the walk reaches the tokenizer and the contract');
  assert.ok(bare.has('onnxruntime-node') && bare.has('hono'), 'the walk sees the bare imports');
  assert.deepEqual([...bare].filter((spec) => /tensorflow|tfjs/.test(spec)), []);
  assert.deepEqual([...inStage(files, 'train'), ...inStage(files, 'export')], [], 'serving reaches the training or export stage');
});

test('export reaches the contract and never serving code', async () => {
  const { files } = await reach('src/export');
  assert.ok(inStage(files, 'package').length, 'export imports src/package');
  assert.deepEqual(inStage(files, 'serve'), []);
});
