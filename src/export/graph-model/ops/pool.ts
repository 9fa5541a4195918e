/** MaxPool and AvgPool (NHWC in TF, NCHW in ONNX; TF's SAME average excludes the padding, as ONNX's default does). */
import { attrInts } from '../attributes.ts';
import type { OpConverter } from '../context.ts';
import { checkNhwc, TO_NCHW, TO_NHWC, windowAttributes, windowOf, windowShape } from './conv.ts';

function pool(onnx: 'MaxPool' | 'AveragePool'): OpConverter {
  return (op) => {
    checkNhwc(op);
    op.expectRank(0, 4, 'an NHWC image batch');
    const k = attrInts(op.node, 'ksize') ?? [];
    if (k.length !== 4 || k[0] !== 1 || k[3] !== 1) throw op.refuse(`attribute ksize [${k}] is not supported (a window over height and width only)`);
    const w = windowOf(op, [k[1]!, k[2]!]);
    if (w.dilations.some((d) => d !== 1)) throw op.refuse('dilated pooling is not supported');
    const x = op.input(0);
    const g = op.graph;
    const y = g.op(onnx, [g.transpose(op.name(0), TO_NCHW)], windowAttributes(op, w, x.shape));
    return [{ name: g.transpose(y, TO_NHWC), dtype: x.dtype, shape: windowShape(x.shape, w, x.shape?.[3] ?? null) }];
  };
}

export const poolOps: Record<string, OpConverter> = {
  MaxPool: pool('MaxPool'),
  AvgPool: pool('AveragePool'),
};
