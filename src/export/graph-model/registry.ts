/** One converter per TF op name (tf2onnx-style handlers), gathered from the op families in ops/. */
import type { OpConverter } from './context.ts';
import { convOps } from './ops/conv.ts';
import { elementwiseOps } from './ops/elementwise.ts';
import { nnOps } from './ops/nn.ts';
import { matmulOps } from './ops/matmul.ts';
import { poolOps } from './ops/pool.ts';
import { reduceOps } from './ops/reduce.ts';
import { shapeOps } from './ops/shape.ts';
import { sliceOps } from './ops/slice.ts';

export const OP_CONVERTERS: Readonly<Record<string, OpConverter>> = {
  ...elementwiseOps,
  ...convOps,
  ...poolOps,
  ...shapeOps,
  ...sliceOps,
  ...reduceOps,
  ...matmulOps,
  ...nnOps,
};

/** TF1 while loops and conds: refused by name (ONNX Loop/If are not generated). */
export const TF1_CONTROL_FLOW = ['Enter', 'Exit', 'Switch', 'Merge', 'LoopCond', 'NextIteration'];
