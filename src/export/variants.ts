/**
 * The smaller copies of an fp32 language-model graph (int8, fp16), each checked against the fp32
 * file before it may be written: logits within a bound, token-by-token decoding within a bound of
 * its own full-sequence logits, and the perplexity change on a sample text recorded.
 */
import type { Tokenizer } from '../tokenizer/index.ts';
import type { Graph } from './graph.ts';
import type { LanguageModelSpec } from './lm/spec.ts';
import { quantizeInt8, weightsToFp16 } from './quantize.ts';
import { createSession, meanNll } from './runner.ts';
import { sampleIds, verifyVariant, type VariantBounds } from './verify.ts';
import { serializeModel } from './writer.ts';

export type VariantKey = 'int8' | 'fp16';

/**
 * int8 quantizes activations with one scale per call (DynamicQuantizeLinear over the whole
 * input), so a one-token call rounds differently from a full sequence: the shipped Transformer's
 * int8 file differs from its fp32 file by 2.2% of the logits' scale and from its own full run by
 * 1.5%; an untrained 10.8M-parameter Transformer (6 layers, d 384, logits' scale 1.75) by 5.5%
 * from fp32. The bounds catch a broken copy (wrong scales, saturated integer products: errors of
 * the size of the logits), not quantization noise. fp16 only rounds weights, and decodes token
 * by token exactly as it runs a sequence.
 */
export const VARIANT_BOUNDS: Record<VariantKey, VariantBounds> = {
  int8: { relativeToFp32: 0.1, incremental: 0.05 },
  fp16: { relativeToFp32: 1e-3, incremental: 1e-5 },
};

/** The sample text's ids, or a fixed id pattern when the tokenizer cannot encode enough of it. */
export function variantText(tokenizer: Tokenizer | undefined, vocabSize: number): number[] {
  const ids = tokenizer ? sampleIds(tokenizer) : [];
  return ids.length > 8 ? ids : Array.from({ length: 64 }, (_, i) => (i * 31 + 7) % vocabSize);
}

export interface Variants {
  int8?: Graph;
  fp16?: Graph;
  parity: Partial<Record<VariantKey, Record<string, number>>>;
}

export async function buildVariants(graph: Graph, spec: LanguageModelSpec, text: number[], wanted: Partial<Record<VariantKey, boolean>>, log: (line: string) => void): Promise<Variants> {
  const result: Variants = { parity: {} };
  const fp32 = serializeModel(graph);
  const fp32Session = await createSession(fp32);
  try {
    const base = Math.exp(await meanNll(fp32Session, spec, text));
    const measure = async (key: VariantKey, variant: Graph) => {
      const bytes = serializeModel(variant);
      const session = await createSession(bytes);
      try {
        const parity = await verifyVariant(key, session, fp32Session, spec, text, VARIANT_BOUNDS[key]);
        const perplexity = Math.exp(await meanNll(session, spec, text));
        const change = perplexity / base - 1;
        log(`${key}: ${(bytes.byteLength / 1e6).toFixed(2)} MB (fp32 ${(fp32.byteLength / 1e6).toFixed(2)} MB), perplexity ${perplexity.toFixed(3)} vs ${base.toFixed(3)} (${(change * 100).toFixed(2)}%), logits vs fp32 max |diff| ${parity.maxAbsDiff.toExponential(2)}, token by token vs full ${parity.incrementalMaxAbsDiff.toExponential(2)}`);
        result.parity[key] = { ...parity, perplexity, fp32Perplexity: base, perplexityChange: change, bytes: bytes.byteLength, fp32Bytes: fp32.byteLength, tokens: text.length };
        result[key] = variant;
      } finally {
        await session.release();
      }
    };
    if (wanted.int8) await measure('int8', quantizeInt8(graph));
    if (wanted.fp16) await measure('fp16', weightsToFp16(graph));
  } finally {
    await fp32Session.release();
  }
  return result;
}
