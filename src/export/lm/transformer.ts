/**
 * The Transformer language-model graph's I/O (names: src/package/io.ts `transformerNames`, the
 * HF Optimum / transformers.js convention): ids, mask, positions and the past K/V [batch_size, H,
 * past_sequence_length, hd] in; logits [batch_size, sequence_length, vocab] and the concatenated
 * K/V out. Heads and head size are fixed numbers (transformers.js shapes the empty first-step
 * past from them); past length 0 on the first step.
 */
import { ATTENTION_MASK, INPUT_IDS, LOGITS, newKeyValue, pastKeyValue, POSITION_IDS, presentKeyValue, transformerNames } from '../../package/index.ts';
import type { AttentionForm, AttentionIO } from '../converters/types.ts';
import type { GraphIO } from '../convert.ts';
import type { Graph } from '../graph.ts';
import { buildAttentionMask } from './attention.ts';

export interface TransformerShape {
  vocabSize: number;
  layers: number;
  heads: number;
  headDim: number;
}

/**
 * `newKeyValues` (decomposed attention only) reads the past on its own instead of through the
 * present Concat and adds an output per layer and part [batch_size, H, sequence_length, hd], the
 * K/V of this call's tokens: a runtime that keeps its own cache fetches those and never has the
 * cache copied.
 */
export function transformerLanguageModelIO(shape: TransformerShape, form: AttentionForm, options: { newKeyValues?: boolean } = {}): GraphIO {
  const { layers, heads, headDim, vocabSize } = shape;
  const pastShape = ['batch_size', heads, 'past_sequence_length', headDim];
  const presentShape = ['batch_size', heads, 'total_sequence_length', headDim];
  const freshShape = ['batch_size', heads, 'sequence_length', headDim];
  const pasts: { key: string; value: string }[] = [];
  const lm: NonNullable<GraphIO['lm']> = {
    recurrentState() {
      throw new Error('a Transformer language model has no recurrent layers');
    },
  };
  let graph: Graph | undefined;
  return {
    inputs(g) {
      graph = g;
      const inputIds = g.addInput(INPUT_IDS, 'int64', ['batch_size', 'sequence_length']);
      const attentionMask = g.addInput(ATTENTION_MASK, 'int64', ['batch_size', 'total_sequence_length']);
      const positionIds = g.addInput(POSITION_IDS, 'int64', ['batch_size', 'sequence_length']);
      for (let i = 0; i < layers; i++) {
        pasts.push({
          key: g.addInput(pastKeyValue(i, 'key'), 'float32', pastShape),
          value: g.addInput(pastKeyValue(i, 'value'), 'float32', pastShape),
        });
      }
      const mask = g.inScope(ATTENTION_MASK, () => buildAttentionMask(g, inputIds, attentionMask, form));
      const attention: AttentionIO = {
        form,
        ...mask,
        newKeyValues: options.newKeyValues ?? false,
        positionIds,
        attentionMask,
        past: (block) => pasts[block]!,
        present(block, key, value, fresh) {
          graph!.addOutput(key, presentKeyValue(block, 'key'), 'float32', presentShape);
          graph!.addOutput(value, presentKeyValue(block, 'value'), 'float32', presentShape);
          if (fresh) {
            graph!.addOutput(fresh.key, newKeyValue(block, 'key'), 'float32', freshShape);
            graph!.addOutput(fresh.value, newKeyValue(block, 'value'), 'float32', freshShape);
          }
        },
      };
      lm.attention = attention;
      return [{ name: inputIds, dtype: 'int64', shape: [null, null] }];
    },
    outputs(g, [logits]) {
      g.addOutput(logits!.name, LOGITS, 'float32', ['batch_size', 'sequence_length', vocabSize]);
      // The HF names first (transformers.js maps each present K/V to the next past); ferry's new K/V last.
      g.orderOutputs([LOGITS, ...transformerNames(layers).present]);
    },
    lm,
  };
}
