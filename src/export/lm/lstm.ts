/**
 * The LSTM language-model graph's I/O (docs/FORMATS.md): `input_ids` and per layer
 * `past_h.{l}` / `past_c.{l}` [batch_size, hidden] in; `logits` and `present_h.{l}` /
 * `present_c.{l}` out. The state feeds the LSTM op's initial_h / initial_c.
 */
import type { GraphIO } from '../convert.ts';

export function lstmLanguageModelIO(vocabSize: number): GraphIO {
  let graph: Parameters<GraphIO['inputs']>[0] | undefined;
  const order: string[] = ['logits'];
  return {
    inputs(g) {
      graph = g;
      return [{ name: g.addInput('input_ids', 'int64', ['batch_size', 'sequence_length']), dtype: 'int64', shape: [null, null] }];
    },
    outputs(g, [logits]) {
      g.addOutput(logits!.name, 'logits', 'float32', ['batch_size', 'sequence_length', vocabSize]);
      g.orderOutputs(order);
    },
    lm: {
      recurrentState(index, hidden, withCell) {
        const g = graph!;
        const initialH = g.addInput(`past_h.${index}`, 'float32', ['batch_size', hidden]);
        const initialC = withCell ? g.addInput(`past_c.${index}`, 'float32', ['batch_size', hidden]) : undefined;
        return {
          initialH,
          initialC,
          present(yh, yc) {
            order.push(`present_h.${index}`);
            g.addOutput(yh, `present_h.${index}`, 'float32', ['batch_size', hidden]);
            if (yc) {
              order.push(`present_c.${index}`);
              g.addOutput(yc, `present_c.${index}`, 'float32', ['batch_size', hidden]);
            }
          },
        };
      },
    },
  };
}
