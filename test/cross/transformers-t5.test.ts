// Hugging Face compatibility of the T5 export: transformers.js loads a package of seeded random
// weights offline with pipeline('text2text-generation', dir) and decodes greedily the same token
// ids as ferry's seq2seq decoder over the same two graphs, for the fp32, int8 and fp16 files.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { greedySeq2Seq } from '../../src/package/seq2seq.ts';
import { buildT5Package } from '../export/t5-package.ts';

const SOURCES = ['the cat', 'a dog sat on the mat', 'cat'];

// transformers.js's dtype names for the files ferry writes (Optimum's: _quantized, _fp16).
const DTYPES = { fp32: 'fp32', int8: 'q8', fp16: 'fp16' } as const;

for (const [precision, dtype] of Object.entries(DTYPES) as [keyof typeof DTYPES, (typeof DTYPES)[keyof typeof DTYPES]][]) {
  test(`pipeline("text2text-generation", dir, { dtype: '${dtype}' }) offline gives the greedy ids of ferry\'s seq2seq decoder over the ${precision} files`, async () => {
    const pkg = await buildT5Package('tiny-t5', { copies: precision !== 'fp32' });
    const { dir, tokenizer } = pkg;
    try {
      const ours = await pkg.openDecoder(precision);
      const { pipeline, env } = await import('@huggingface/transformers');
      env.allowRemoteModels = false;
      const generator = await pipeline('text2text-generation', dir, { dtype });
      let produced = 0;
      for (const source of SOURCES) {
        const ids = [...tokenizer.encode(source), 1];
        assert.deepEqual([...generator.tokenizer.encode(source)], ids, `source tokens of ${JSON.stringify(source)}`);
        const [expected] = await greedySeq2Seq(ours, [ids], 10);
        const inputs = generator.tokenizer(source);
        const output = await generator.model.generate({ ...inputs, max_new_tokens: 10, do_sample: false }) as { tolist(): bigint[][] };
        // transformers.js returns the start token first, and eos when it came.
        const theirs = output.tolist()[0]!.map(Number).slice(1).filter((id, i, all) => !(id === 1 && i === all.length - 1));
        assert.deepEqual(theirs, expected, `greedy ids of ${JSON.stringify(source)}`);
        produced += expected!.length;
      }
      assert.ok(produced > 0, 'the random model generated something');
      await generator.dispose();
    } finally {
      await pkg.remove();
    }
  });
}
