// Hugging Face compatibility: @huggingface/transformers loads an exported Transformer package
// offline (local files only) and generates the same greedy text as ferry's server.
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { loadTokenizer } from '../../src/tokenizer/index.ts';
import { buildPackages, type TestPackages } from '../serve/packages.ts';
import { completeOnServer, startNodeServer, type NodeServer } from './harness.ts';

const PROMPTS = ['to be, or', 'héllo wörld — ', 'ROMEO: But soft'];

describe('transformers.js loads an exported Transformer', () => {
  let packages: TestPackages;
  let server: NodeServer;

  before(async () => {
    packages = await buildPackages();
    server = await startNodeServer([packages.transformer]);
  });

  after(async () => {
    await server?.close();
    await packages?.remove();
  });

  test('pipeline("text-generation", dir) offline gives ferry\'s greedy text and ferry\'s prompt tokens', async () => {
    const { pipeline, env } = await import('@huggingface/transformers');
    // local_files_only alone still asks the hub for a missing file; a bare relative path is a hub id.
    env.allowRemoteModels = false;
    const dir = path.resolve(packages.transformer);
    const generator = await pipeline('text-generation', dir, { dtype: 'fp32' });
    const ours = loadTokenizer(JSON.parse(await readFile(path.join(dir, 'tokenizer.json'), 'utf8')));
    for (const prompt of PROMPTS) {
      assert.deepEqual([...generator.tokenizer.encode(prompt)], ours.encode(prompt), `prompt tokens of ${JSON.stringify(prompt)}`);
      const { status, json } = await completeOnServer(server.url, { model: 'tiny-transformer', prompt, max_tokens: 12, temperature: 0 });
      assert.equal(status, 200);
      const expected = json.choices[0].text as string;
      const [output] = (await generator(prompt, { max_new_tokens: 12, do_sample: false, return_full_text: false })) as { generated_text: string }[];
      assert.equal(output!.generated_text, expected, `continuation of ${JSON.stringify(prompt)}`);
    }
    await generator.dispose();
  });
});
