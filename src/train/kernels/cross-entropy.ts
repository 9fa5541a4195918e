/**
 * Mean softmax cross-entropy of logits [N, V] against int targets [N], from the softmax the
 * backend already computed (one SIMD pass on wasm), and its gradient (P - onehot) dy / N in one
 * pass. tfjs's softmaxCrossEntropy over one-hot labels runs ~15 kernels with three exps over the
 * logits. The loss stays stable where P underflows: per row, with j the most likely class,
 *   loss = logsumexp(z) - z_t = z_j - log P_j - z_t,   and P_j >= 1/V never underflows.
 */
import type { HeapKernel } from './heap-kernel.ts';

export const CROSS_ENTROPY_KERNEL = 'FerryCrossEntropy';
export const CROSS_ENTROPY_GRAD_KERNEL = 'FerryCrossEntropyGrad';

/** Inputs logits [N, V], probs = softmax(logits), targets int32 [N]; output the mean loss []. */
export const crossEntropyKernel: HeapKernel<Record<string, never>> = {
  kernelName: CROSS_ENTROPY_KERNEL,
  inputNames: ['logits', 'probs', 'targets'],
  outputShapes: () => [[]],
  compute: ([logits, probs, targets], [loss], [shape]) => {
    const [rows, vocab] = shape as [number, number];
    let total = 0;
    for (let r = 0; r < rows; r++) {
      const from = r * vocab;
      let best = from;
      for (let j = from + 1; j < from + vocab; j++) if (probs![j]! > probs![best]!) best = j;
      const target = targets![r]!;
      if (!(target >= 0 && target < vocab)) throw new Error(`cross-entropy: target ${target} is not in [0, ${vocab - 1}]`);
      total += logits![best]! - Math.log(probs![best]!) - logits![from + target]!;
    }
    loss![0] = total / rows;
  },
};

/** Inputs probs [N, V], targets int32 [N], dy []; output dlogits [N, V]. */
export const crossEntropyGradKernel: HeapKernel<Record<string, never>> = {
  kernelName: CROSS_ENTROPY_GRAD_KERNEL,
  inputNames: ['probs', 'targets', 'dy'],
  outputShapes: ([probs]) => [probs!.shape],
  compute: ([probs, targets, dy], [dlogits], [shape]) => {
    const [rows, vocab] = shape as [number, number];
    const scale = dy![0]! / rows;
    for (let i = 0; i < rows * vocab; i++) dlogits![i] = probs![i]! * scale;
    for (let r = 0; r < rows; r++) dlogits![r * vocab + targets![r]!]! -= scale;
  },
};
