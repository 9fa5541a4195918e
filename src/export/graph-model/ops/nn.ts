/** Softmax, image resizing, depth/space rearrangement, batch norm and TopK. */
import { attr } from '../../graph.ts';
import { attrBool, attrFloat, attrInt } from '../attributes.ts';
import { castTo, int64Input, type OpContext, type OpConverter } from '../context.ts';
import { numbers } from '../fold.ts';
import { checkNhwc, TO_NCHW, TO_NHWC } from './conv.ts';

const softmax = (onnx: 'Softmax' | 'LogSoftmax'): OpConverter => (op) => [{ name: op.graph.op(onnx, [op.name(0)], { axis: attr.int(-1) }), dtype: op.input(0).dtype, shape: op.input(0).shape }];

/** ONNX Resize's coordinate mapping for TF's align_corners / half_pixel_centers (as tfjs computes them). */
function coordinates(op: OpContext, nearest: boolean): { coordinate_transformation_mode: string; nearest_mode?: string } {
  const alignCorners = attrBool(op.node, 'align_corners', false);
  const halfPixel = attrBool(op.node, 'half_pixel_centers', false);
  if (alignCorners && halfPixel) throw op.refuse('align_corners together with half_pixel_centers is not supported');
  if (!nearest) return { coordinate_transformation_mode: alignCorners ? 'align_corners' : halfPixel ? 'half_pixel' : 'asymmetric' };
  if (alignCorners) return { coordinate_transformation_mode: 'align_corners', nearest_mode: 'round_prefer_ceil' };
  return { coordinate_transformation_mode: halfPixel ? 'tf_half_pixel_for_nn' : 'asymmetric', nearest_mode: 'floor' };
}

/** Resize over H and W of an NHWC tensor: sizes are [N, height, width, C]. */
function resize(nearest: boolean): OpConverter {
  return (op) => {
    const x = op.input(0);
    const g = op.graph;
    const target = op.constant(1) ? numbers(op.constant(1)!) : undefined;
    const [n, c] = [x.shape?.[0], x.shape?.[3]];
    let sizes: string;
    if (target && typeof n === 'number' && typeof c === 'number') sizes = g.int64('sizes', [n, target[0]!, target[1]!, c]);
    else {
      const shape = g.op('Shape', [op.name(0)]);
      sizes = g.op('Concat', [g.slice(shape, 0, 0, 1), int64Input(op, 1), g.slice(shape, 0, 3, 4)], { axis: attr.int(0) });
    }
    const modes = coordinates(op, nearest);
    const attributes = {
      mode: attr.string(nearest ? 'nearest' : 'linear'),
      coordinate_transformation_mode: attr.string(modes.coordinate_transformation_mode),
      ...(modes.nearest_mode ? { nearest_mode: attr.string(modes.nearest_mode) } : {}),
    };
    const name = g.op('Resize', [op.name(0), '', '', sizes], attributes);
    return [{ name, dtype: x.dtype, shape: [n ?? null, target?.[0] ?? null, target?.[1] ?? null, c ?? null] }];
  };
}

function blockRearrange(onnx: 'DepthToSpace' | 'SpaceToDepth'): OpConverter {
  return (op) => {
    checkNhwc(op);
    const x = op.input(0);
    const block = attrInt(op.node, 'block_size', 2);
    const g = op.graph;
    const y = g.op(onnx, [g.transpose(op.name(0), TO_NCHW)], { blocksize: attr.int(block), ...(onnx === 'DepthToSpace' ? { mode: attr.string('DCR') } : {}) });
    const s = x.shape;
    const grow = onnx === 'DepthToSpace';
    const scale = (d: number | null | undefined, up: boolean) => (d == null ? null : up ? d * block : d / block);
    const shape = s ? [s[0] ?? null, scale(s[1], grow), scale(s[2], grow), s[3] == null ? null : grow ? s[3] / (block * block) : s[3] * block * block] : undefined;
    return [{ name: g.transpose(y, TO_NHWC), dtype: x.dtype, shape }];
  };
}

/** Inference-mode batch norm over the last (channel) axis. */
const fusedBatchNorm: OpConverter = (op) => {
  checkNhwc(op);
  if (attrBool(op.node, 'is_training', false)) throw op.refuse('is_training true (a training-mode batch norm) is not supported');
  const g = op.graph;
  const std = g.op('Sqrt', [g.op('Add', [op.name(4), g.scalarFloat('epsilon', attrFloat(op.node, 'epsilon', 1e-3))])]);
  const y = g.op('Add', [g.op('Mul', [g.op('Sub', [op.name(0), op.name(3)]), g.op('Div', [op.name(1), std])]), op.name(2)]);
  return [{ name: y, dtype: op.input(0).dtype, shape: op.input(0).shape }];
};

const topK: OpConverter = (op) => {
  const x = op.input(0);
  if (!attrBool(op.node, 'sorted', true)) throw op.refuse('sorted false is not supported');
  const k = op.constant(1) ? numbers(op.constant(1)!)[0]! : null;
  const g = op.graph;
  const kInput = g.op('Reshape', [int64Input(op, 1), g.int64('shape', [1])]);
  const [values, indices] = g.node('TopK', [op.name(0), kInput], { axis: attr.int(-1), largest: attr.int(1), sorted: attr.int(1) }, { outputs: 2 });
  const shape = x.shape ? [...x.shape.slice(0, -1), k] : undefined;
  return [{ name: values!, dtype: x.dtype, shape }, { name: castTo(g, indices!, 'int32'), dtype: 'int32', shape }];
};

export const nnOps: Record<string, OpConverter> = {
  Softmax: softmax('Softmax'),
  LogSoftmax: softmax('LogSoftmax'),
  ResizeBilinear: resize(false),
  ResizeNearestNeighbor: resize(true),
  DepthToSpace: blockRearrange('DepthToSpace'),
  SpaceToDepth: blockRearrange('SpaceToDepth'),
  FusedBatchNorm: fusedBatchNorm,
  FusedBatchNormV3: fusedBatchNorm,
  TopKV2: topK,
};
