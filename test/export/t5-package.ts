// A T5 package of seeded random weights and a char tokenizer, written to a temp dir, with ferry's
// seq2seq decoder over its two graphs: what the cross and serving tests of T5 start from.
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import * as ort from 'onnxruntime-node';
import { writePackageDir } from '../../src/export/package.ts';
import { createSession } from '../../src/export/runner.ts';
import { quantizeInt8, weightsToFp16 } from '../../src/export/quantize.ts';
import { t5DecoderGraph, t5EncoderGraph } from '../../src/export/t5/graph.ts';
import { T5_DECODER_FILE, T5_ENCODER_FILE, T5_VARIANT_FILES, t5PackageFiles } from '../../src/export/t5/package.ts';
import type { T5Variants } from '../../src/export/t5/variants.ts';
import { wrapOrtSession } from '../../src/package/ort-session.ts';
import { createSeq2SeqDecoder, greedySeq2Seq, type Seq2SeqDecoder } from '../../src/package/seq2seq.ts';
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
  /** Sessions of the package's own files of `precision` (onnxruntime-node, this thread). */
  openDecoder(precision?: 'fp32' | 'int8' | 'fp16'): Promise<Seq2SeqDecoder>;
  /** Each source's greedy target through the fp32 graphs (decoded alone): what every runtime must give. */
  greedyTargets(sources: readonly string[], maxTokens: number): Promise<{ ids: number[]; text: string }[]>;
  remove(): Promise<void>;
}

/**
 * `copies`: also the int8 and fp16 files, converted as export converts them but not checked
 * (these weights, larger than training's, move int8 logits past its bounds): for tests that
 * compare two runtimes over the same files.
 */
export async function buildT5Package(name = 'tiny-t5', options: { copies?: boolean } = {}): Promise<T5TestPackage> {
  const tokenizer = await trainT5Tokenizer('char', ['the cat sat on the mat', 'a dog', 'der Hund']);
  const config = tinyT5Config({ vocabSize: tokenizer.vocabSize, tieWeights: true });
  const root = await mkdtemp(path.join(tmpdir(), 'ferry-t5-'));
  const dir = path.join(root, name);
  const weights = randomT5Weights(config, 23);
  let copies: T5Variants | undefined;
  if (options.copies) {
    const [encoder, decoder] = [t5EncoderGraph(config, weights, 17), t5DecoderGraph(config, weights, 17)];
    copies = { encoder: { int8: quantizeInt8(encoder), fp16: weightsToFp16(encoder) }, decoder: { int8: quantizeInt8(decoder), fp16: weightsToFp16(decoder) }, parity: {} };
  }
  await writePackageDir(dir, t5PackageFiles(config, weights, tokenizer, 17, name, copies));
  const session = async (file: string) => wrapOrtSession(ort.Tensor, await createSession(await readFile(path.join(dir, file))), 'onnxruntime-node cpu');
  const files = { fp32: { encoder: T5_ENCODER_FILE, decoder: T5_DECODER_FILE }, ...T5_VARIANT_FILES };
  const openDecoder = async (precision: 'fp32' | 'int8' | 'fp16' = 'fp32') => createSeq2SeqDecoder(await session(files[precision].encoder), await session(files[precision].decoder), {
    vocabSize: config.vocabSize, decoderLayers: config.nDecoderLayers, heads: config.nHeads, headDim: config.dKv, startId: 0, eosId: 1, padId: 0,
  });
  return {
    dir, name, config, tokenizer, openDecoder,
    greedyTargets: async (sources, maxTokens) => {
      const decoder = await openDecoder();
      const targets: { ids: number[]; text: string }[] = [];
      for (const source of sources) {
        const [ids] = await greedySeq2Seq(decoder, [[...tokenizer.encode(source), 1]], maxTokens);
        targets.push({ ids: ids!, text: tokenizer.decode(ids!) });
      }
      return targets;
    },
    remove: () => rm(root, { recursive: true, force: true }),
  };
}
