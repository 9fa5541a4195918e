/**
 * The LSTM language-model graph's I/O (names: src/package/io.ts `lstmNames`): the ids and per
 * layer h / c [batch_size, hidden] in; the logits and the next h / c out. The state feeds the
 * LSTM op's initial_h / initial_c.
 */
import { INPUT_IDS, LOGITS, lstmPastC, lstmPastH, lstmPresentC, lstmPresentH } from '../../package/index.ts';
import type { GraphIO } from '../convert.ts';

export function lstmLanguageModelIO(vocabSize: number): GraphIO {
  let graph: Parameters<GraphIO['inputs']>[0] | undefined;
  const order: string[] = [LOGITS];
  return {
    inputs(g) {
      graph = g;
      return [{ name: g.addInput(INPUT_IDS, 'int64', ['batch_size', 'sequence_length']), dtype: 'int64', shape: [null, null] }];
    },
    outputs(g, [logits]) {
      g.addOutput(logits!.name, LOGITS, 'float32', ['batch_size', 'sequence_length', vocabSize]);
      g.orderOutputs(order);
    },
    lm: {
      recurrentState(index, hidden, withCell) {
        const g = graph!;
        const initialH = g.addInput(lstmPastH(index), 'float32', ['batch_size', hidden]);
        const initialC = withCell ? g.addInput(lstmPastC(index), 'float32', ['batch_size', hidden]) : undefined;
        return {
          initialH,
          initialC,
          present(yh, yc) {
            order.push(lstmPresentH(index));
            g.addOutput(yh, lstmPresentH(index), 'float32', ['batch_size', hidden]);
            if (yc) {
              order.push(lstmPresentC(index));
              g.addOutput(yc, lstmPresentC(index), 'float32', ['batch_size', hidden]);
            }
          },
        };
      },
    },
  };
}
