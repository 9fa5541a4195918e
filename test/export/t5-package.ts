// A T5 package of seeded random weights and a char tokenizer, written to a temp dir, with ferry's
// seq2seq decoder over its two graphs: what the cross and serving tests of T5 start from.
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import * as ort from 'onnxruntime-node';
import { writePackageDir } from '../../src/export/package.ts';
import { createSession } from '../../src/export/runner.ts';
import { T5_DECODER_FILE, T5_ENCODER_FILE, t5PackageFiles } from '../../src/export/t5/package.ts';
import { wrapOrtSession } from '../../src/package/ort-session.ts';
import { createSeq2SeqDecoder, type Seq2SeqDecoder } from '../../src/package/seq2seq.ts';
import type { Tokenizer } from '../../src/tokenizer/index.ts';
import { trainT5Tokenizer } from '../../src/tokenizer/t5.ts';
import type { T5Config } from '../../src/train/models/t5-config.ts';
import { randomT5Weights, tinyT5Config } from './t5-fixtures.ts';

export interface T5TestPackage {
  /** The package dir, `name` in its ferry.json. */
  dir: string;
  name: string;
  config: T5Config;
  tokenizer: Tokenizer;
  /** Sessions of the package's own files (onnxruntime-node, this thread). */
  openDecoder(): Promise<Seq2SeqDecoder>;
  remove(): Promise<void>;
}

export async function buildT5Package(name = 'tiny-t5'): Promise<T5TestPackage> {
  const tokenizer = await trainT5Tokenizer('char', ['the cat sat on the mat', 'a dog', 'der Hund']);
  const config = tinyT5Config({ vocabSize: tokenizer.vocabSize, tieWeights: true });
  const root = await mkdtemp(path.join(tmpdir(), 'ferry-t5-'));
  const dir = path.join(root, name);
  await writePackageDir(dir, t5PackageFiles(config, randomT5Weights(config, 23), tokenizer, 17, name));
  const session = async (file: string) => wrapOrtSession(ort.Tensor, await createSession(await readFile(path.join(dir, file))), 'onnxruntime-node cpu');
  return {
    dir, name, config, tokenizer,
    openDecoder: async () => createSeq2SeqDecoder(await session(T5_ENCODER_FILE), await session(T5_DECODER_FILE), {
      vocabSize: config.vocabSize, decoderLayers: config.nDecoderLayers, heads: config.nHeads, headDim: config.dKv, startId: 0, eosId: 1, padId: 0,
    }),
    remove: () => rm(root, { recursive: true, force: true }),
  };
}
