/**
 * The training loss. On wasm it runs ferry's fused cross-entropy (softmax once, then one pass
 * each way); elsewhere tfjs's softmaxCrossEntropy over one-hot labels. Same function either way.
 */
import * as tf from '@tensorflow/tfjs';
import { CROSS_ENTROPY_GRAD_KERNEL, CROSS_ENTROPY_KERNEL } from '../kernels/cross-entropy.ts';
import { hasFusedKernel, runFused } from '../kernels/heap-kernel.ts';

type CustomGradFunc = Parameters<typeof tf.customGrad>[0];

/** Mean cross-entropy (nats per token) of logits [..., V] against int targets [...]. */
export function crossEntropy(logits: tf.Tensor, targets: tf.Tensor): tf.Scalar {
  return tf.tidy(() => {
    const vocab = logits.shape[logits.shape.length - 1]!;
    const rows = tf.reshape(logits, [-1, vocab]);
    const ids = tf.reshape(targets, [-1]);
    if (hasFusedKernel(CROSS_ENTROPY_KERNEL) && logits.dtype === 'float32') {
      return fusedCrossEntropy(rows, ids.dtype === 'int32' ? ids : tf.cast(ids, 'int32'));
    }
    // softmaxCrossEntropy carries its own fused gradient (softmax - labels).
    return tf.losses.softmaxCrossEntropy(tf.oneHot(ids as tf.Tensor1D, vocab), rows) as tf.Scalar;
  });
}

function fusedCrossEntropy(logits: tf.Tensor, targets: tf.Tensor): tf.Scalar {
  const loss = tf.customGrad(((rows: tf.Tensor, save: tf.GradSaveFunc) => {
    const probs = tf.softmax(rows);
    save([probs]);
    return {
      value: runFused(CROSS_ENTROPY_KERNEL, { logits: rows, probs, targets })[0]!,
      gradFunc: (dy: tf.Tensor, [savedProbs]: tf.Tensor[]) => runFused(CROSS_ENTROPY_GRAD_KERNEL, { probs: savedProbs!, targets, dy }),
    };
  }) as unknown as CustomGradFunc) as (rows: tf.Tensor) => tf.Scalar;
  return loss(logits);
}
