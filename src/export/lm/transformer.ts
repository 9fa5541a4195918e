/**
 * The Transformer language-model graph's I/O (docs/FORMATS.md, the HF Optimum / transformers.js
 * convention): `input_ids`, `attention_mask`, `position_ids`, `past_key_values.{i}.key|value`
 * [batch_size, H, past_sequence_length, hd] in; `logits` [batch_size, sequence_length, vocab] and
 * `present.{i}.key|value` out. Heads and head size are fixed numbers (transformers.js shapes the
 * empty first-step past from them); past length 0 on the first step.
 */
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

export function transformerLanguageModelIO(shape: TransformerShape, form: AttentionForm): GraphIO {
  const { layers, heads, headDim, vocabSize } = shape;
  const pastShape = ['batch_size', heads, 'past_sequence_length', headDim];
  const presentShape = ['batch_size', heads, 'total_sequence_length', headDim];
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
      const inputIds = g.addInput('input_ids', 'int64', ['batch_size', 'sequence_length']);
      const attentionMask = g.addInput('attention_mask', 'int64', ['batch_size', 'total_sequence_length']);
      const positionIds = g.addInput('position_ids', 'int64', ['batch_size', 'sequence_length']);
      for (let i = 0; i < layers; i++) {
        pasts.push({
          key: g.addInput(`past_key_values.${i}.key`, 'float32', pastShape),
          value: g.addInput(`past_key_values.${i}.value`, 'float32', pastShape),
        });
      }
      const mask = g.inScope('attention_mask', () => buildAttentionMask(g, inputIds, attentionMask, form));
      const attention: AttentionIO = {
        form,
        ...mask,
        positionIds,
        past: (block) => pasts[block]!,
        present(block, key, value) {
          graph!.addOutput(key, `present.${block}.key`, 'float32', presentShape);
          graph!.addOutput(value, `present.${block}.value`, 'float32', presentShape);
        },
      };
      lm.attention = attention;
      return [{ name: inputIds, dtype: 'int64', shape: [null, null] }];
    },
    outputs(g, [logits]) {
      g.addOutput(logits!.name, 'logits', 'float32', ['batch_size', 'sequence_length', vocabSize]);
      g.orderOutputs(['logits']);
    },
    lm,
  };
}
