// Hugging Face compatibility of the T5 export: transformers.js loads a package of seeded random
// weights offline with pipeline('text2text-generation', dir) and decodes greedily the same token
// ids as ferry's seq2seq decoder over the same two graphs.
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import * as ort from 'onnxruntime-node';
import { writePackageDir } from '../../src/export/package.ts';
import { createSession } from '../../src/export/runner.ts';
import { T5_DECODER_FILE, T5_ENCODER_FILE, t5PackageFiles } from '../../src/export/t5/package.ts';
import { wrapOrtSession } from '../../src/package/ort-session.ts';
import { createSeq2SeqDecoder, greedySeq2Seq } from '../../src/package/seq2seq.ts';
import { trainT5Tokenizer } from '../../src/tokenizer/t5.ts';
import { randomT5Weights, tinyT5Config } from '../export/t5-fixtures.ts';

const SOURCES = ['the cat', 'a dog sat on the mat', 'cat'];

test('pipeline("text2text-generation", dir) offline gives the greedy ids of ferry\'s seq2seq decoder', async () => {
  const tokenizer = await trainT5Tokenizer('char', ['the cat sat on the mat', 'a dog', 'der Hund']);
  const config = tinyT5Config({ vocabSize: tokenizer.vocabSize, tieWeights: true });
  const weights = randomT5Weights(config, 23);
  const dir = await mkdtemp(path.join(tmpdir(), 'ferry-t5-'));
  try {
    await writePackageDir(dir, t5PackageFiles(config, weights, tokenizer, 17));
    const session = async (file: string) => wrapOrtSession(ort.Tensor, await createSession(await readFile(path.join(dir, file))), 'onnxruntime-node cpu');
    const ours = createSeq2SeqDecoder(await session(T5_ENCODER_FILE), await session(T5_DECODER_FILE), {
      vocabSize: config.vocabSize, decoderLayers: config.nDecoderLayers, heads: config.nHeads, headDim: config.dKv, startId: 0, eosId: 1, padId: 0,
    });
    const { pipeline, env } = await import('@huggingface/transformers');
    env.allowRemoteModels = false;
    const generator = await pipeline('text2text-generation', dir, { dtype: 'fp32' });
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
    await rm(dir, { recursive: true, force: true });
  }
});
