/** Op coverage on hand-built graph models: each converted graph matches tfjs GraphModel.execute (cpu). */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { a } from './builder.ts';
import { convertAndVerify } from './helpers.ts';

const nhwc = { data_format: a.s('NHWC') };
const window = (padding: string, stride = 1) => ({ ...nhwc, padding: a.s(padding), strides: a.ints([1, stride, stride, 1]), dilations: a.ints([1, 1, 1, 1]) });

test('convolutions, tfjs fused convs (BiasAdd + Relu6 / Prelu / LeakyRelu alpha), depthwise and pooling, batch dynamic', async () => {
  const { graph, report } = await convertAndVerify((b) => {
    const x = b.placeholder('image', [-1, 12, 12, 3]);
    const c1 = b.node('_FusedConv2D', 'conv1', [x, b.constant('w1', [3, 3, 3, 8]), b.constant('b1', [8])], { ...window('SAME', 2), fused_ops: a.strings(['BiasAdd', 'Relu6']), num_args: a.i(1) });
    const d1 = b.node('FusedDepthwiseConv2dNative', 'dw1', [c1, b.constant('wd', [3, 3, 8, 1]), b.constant('bd', [8])], { ...window('SAME'), fused_ops: a.strings(['BiasAdd', 'Relu']), num_args: a.i(1) });
    const c2 = b.node('_FusedConv2D', 'conv2', [d1, b.constant('w2', [1, 1, 8, 8]), b.constant('b2', [8]), b.constant('alpha', [8])], { ...window('VALID'), fused_ops: a.strings(['BiasAdd', 'Prelu']), num_args: a.i(2) });
    const sum = b.node('AddV2', 'residual', [c2, c1]);
    const d2 = b.node('DepthwiseConv2dNative', 'dw2', [sum, b.constant('wd2', [3, 3, 8, 2])], window('VALID'));
    const c3 = b.node('_FusedConv2D', 'conv3', [d2, b.constant('w3', [3, 3, 16, 4]), b.constant('b3', [4])], { ...window('SAME'), fused_ops: a.strings(['BiasAdd', 'LeakyRelu']), num_args: a.i(1), leakyrelu_alpha: a.f(0.3) });
    b.node('MaxPool', 'maxpool', [c3], { ...window('SAME', 2), ksize: a.ints([1, 3, 3, 1]) });
    b.node('AvgPool', 'avgpool', [c3], { ...window('VALID'), ksize: a.ints([1, 2, 2, 1]) });
    b.node('Conv2D', 'plain', [x, b.constant('w4', [5, 5, 3, 2])], window('SAME', 3));
    b.output('maxpool');
    b.output('avgpool');
    b.output('plain');
  });
  assert.equal(graph.inputs[0]!.shape[0], 'batch_size', 'the batch stays dynamic');
  assert.ok(report.cases.length >= 3);
  const transposes = graph.nodes.filter((n) => n.opType === 'Transpose').length;
  const edges = graph.inputs.length + graph.outputs.length;
  assert.ok(transposes <= edges, `only the model's edges transpose (${transposes} transposes for ${edges} inputs and outputs)`);
});

test('transposed convolution (Conv2DBackpropInput) with SAME and VALID padding, then a fused conv', async () => {
  await convertAndVerify((b) => {
    const x = b.placeholder('x', [1, 5, 7, 4]);
    const same = b.node('Conv2DBackpropInput', 'same', [b.ints('sizes', [1, 10, 14, 3]), b.constant('w', [3, 3, 3, 4]), x], window('SAME', 2));
    b.node('Conv2DBackpropInput', 'valid', [b.ints('sizes2', [1, 11, 15, 2]), b.constant('w2', [3, 3, 2, 4]), x], window('VALID', 2));
    b.node('_FusedConv2D', 'after', [same, b.constant('w3', [3, 3, 3, 2]), b.constant('b3', [2])], { ...window('SAME'), fused_ops: a.strings(['BiasAdd', 'Relu']), num_args: a.i(1) });
    b.output('after');
    b.output('valid');
  });
});

test('dynamic spatial dims are exported dynamic and checked at two sizes', async () => {
  const { graph, report } = await convertAndVerify((b) => {
    const x = b.placeholder('image', [-1, -1, -1, 3]);
    const c = b.node('_FusedConv2D', 'conv', [x, b.constant('w', [3, 3, 3, 4]), b.constant('b', [4])], { ...window('SAME', 2), fused_ops: a.strings(['BiasAdd', 'Relu']), num_args: a.i(1) });
    b.node('Mean', 'pool', [c, b.ints('axes', [1, 2])], { keep_dims: a.b(false), Tidx: a.type('DT_INT32') });
    b.output('pool');
  });
  assert.deepEqual(graph.inputs[0]!.shape, ['batch_size', 'image_dim_1', 'image_dim_2', 3]);
  assert.deepEqual(report.cases.map((c) => c.name.split('input ')[1]), ['[1,64,64,3]', '[2,96,96,3]']);
});

test('elementwise unary and binary ops with broadcasting, comparisons and Select', async () => {
  await convertAndVerify((b) => {
    const x = b.placeholder('x', [2, 3, 4]);
    const y = b.placeholder('y', [4]);
    const unary = ['Relu', 'Relu6', 'Sigmoid', 'Tanh', 'Elu', 'Selu', 'Neg', 'Abs', 'Floor', 'Square', 'Exp'].map((op) => b.node(op, op.toLowerCase(), [x]));
    const positive = b.node('AddV2', 'positive', [b.node('Abs', 'abs2', [x]), b.constant('one', [], [1])]);
    const more = ['Sqrt', 'Rsqrt', 'Log', 'Reciprocal'].map((op) => b.node(op, op.toLowerCase(), [positive]));
    const leaky = b.node('LeakyRelu', 'leaky', [x], { alpha: a.f(0.1) });
    const prelu = b.node('Prelu', 'prelu', [x, b.constant('slope', [4])]);
    const binary = ['AddV2', 'Add', 'Sub', 'Mul', 'RealDiv', 'Maximum', 'Minimum', 'SquaredDifference'].map((op) => b.node(op, `${op.toLowerCase()}_b`, [x, y]));
    const sum = b.node('AddN', 'sum', [...unary, ...more, leaky, prelu, ...binary]);
    const greater = b.node('Greater', 'greater', [x, y]);
    const both = b.node('LogicalAnd', 'both', [greater, b.node('LessEqual', 'le', [x, b.constant('half', [], [0.5])])]);
    b.node('SelectV2', 'select', [both, sum, b.node('Neg', 'negsum', [sum])]);
    b.output('select');
  });
});

test('reshape, transpose, concat, pack, unpack, split, slice, strided slice masks, gather, tile, pad and shape arithmetic', async () => {
  await convertAndVerify((b) => {
    const x = b.placeholder('x', [-1, 4, 6, 2]);
    const shape = b.node('Shape', 'shape', [x], { out_type: a.type('DT_INT32') });
    const batch = b.node('StridedSlice', 'batch', [shape, b.ints('s0', [0]), b.ints('s1', [1]), b.ints('s2', [1])], { shrink_axis_mask: a.i(1), Index: a.type('DT_INT32') });
    const flatShape = b.node('Pack', 'flat_shape', [batch, b.ints('minus1', [-1], [])], { axis: a.i(0), N: a.i(2) });
    const flat = b.node('Reshape', 'flat', [x, flatShape]);
    const t = b.node('Transpose', 'transpose', [x, b.ints('perm', [0, 2, 1, 3])]);
    const strided = b.node('StridedSlice', 'strided', [t, b.ints('b', [0, 1, 0]), b.ints('e', [0, 5, 0]), b.ints('st', [1, 2, 1])], { begin_mask: a.i(1), end_mask: a.i(5), ellipsis_mask: a.i(4), Index: a.type('DT_INT32') });
    const shrunk = b.node('StridedSlice', 'shrunk', [x, b.ints('b2', [0, -1]), b.ints('e2', [0, 0]), b.ints('st2', [1, 1])], { begin_mask: a.i(1), end_mask: a.i(1), new_axis_mask: a.i(0), shrink_axis_mask: a.i(2), Index: a.type('DT_INT32') });
    const newAxis = b.node('StridedSlice', 'new_axis', [shrunk, b.ints('b3', [0, 0, 0]), b.ints('e3', [0, 0, 0]), b.ints('st3', [1, 1, -1])], { begin_mask: a.i(7), end_mask: a.i(7), new_axis_mask: a.i(2), Index: a.type('DT_INT32') });
    const [p0, p1] = [b.node('Unpack', 'unpack', [x], { num: a.i(2), axis: a.i(-1) }), 'unpack:1'];
    const packed = b.node('Pack', 'pack', [p1, p0], { axis: a.i(-1), N: a.i(2) });
    const split = b.node('Split', 'split', [b.ints('axis1', [1], []), packed], { num_split: a.i(2) });
    b.node('SplitV', 'splitv', [x, b.ints('sizes', [1, -1]), b.ints('axis2', [2], [])], { num_split: a.i(2) });
    const concat = b.node('ConcatV2', 'concat', [split, 'split:1', b.ints('axis3', [-1], [])], { N: a.i(2) });
    const sliced = b.node('Slice', 'slice', [concat, b.ints('begin', [0, 0, 1, 0]), b.ints('size', [-1, 2, 3, -1])]);
    const gathered = b.node('GatherV2', 'gather', [sliced, b.ints('idx', [2, 0]), b.ints('axis4', [2], [])], { batch_dims: a.i(0) });
    const tiled = b.node('Tile', 'tile', [gathered, b.ints('mult', [1, 1, 2, 1])]);
    const padded = b.node('Pad', 'pad', [tiled, b.ints('pads', [0, 0, 1, 2, 0, 1, 0, 0], [4, 2])]);
    const mirrored = b.node('MirrorPad', 'mirror', ['splitv:1', b.ints('mpads', [0, 0, 1, 1, 2, 2, 0, 0], [4, 2])], { mode: a.s('REFLECT') });
    const expanded = b.node('ExpandDims', 'expand', [b.node('Squeeze', 'squeeze', ['splitv'], { squeeze_dims: a.ints([2]) }), b.ints('axis5', [-1], [])]);
    b.output(flat);
    b.output(strided);
    b.output(newAxis);
    b.output(padded);
    b.output(mirrored);
    b.output(expanded);
  });
});

test('reductions, argmax, matmuls (transposed, fused, batched), einsum, softmax', async () => {
  await convertAndVerify((b) => {
    const x = b.placeholder('x', [-1, 5, 6]);
    const reduced = ['Mean', 'Sum', 'Max', 'Min', 'Prod'].map((op, i) => b.node(op, op.toLowerCase(), [x, b.ints(`axes${i}`, [i % 2 ? -1 : 1])], { keep_dims: a.b(i % 2 === 1), Tidx: a.type('DT_INT32') }));
    b.node('ArgMax', 'argmax', [x, b.ints('dim', [2], [])], { output_type: a.type('DT_INT32') });
    const flat = b.node('Reshape', 'rows', [x, b.ints('rows_shape', [-1, 6])]);
    const mm = b.node('MatMul', 'matmul', [flat, b.constant('wt', [3, 6])], { transpose_a: a.b(false), transpose_b: a.b(true) });
    const fused = b.node('_FusedMatMul', 'dense', [mm, b.constant('w', [3, 4]), b.constant('bias', [4])], { transpose_a: a.b(false), transpose_b: a.b(false), fused_ops: a.strings(['BiasAdd', 'Relu']), num_args: a.i(1) });
    b.node('Softmax', 'softmax', [fused]);
    b.node('BatchMatMulV2', 'bmm', [x, x], { adj_x: a.b(false), adj_y: a.b(true) });
    b.node('Einsum', 'einsum', [x, b.constant('we', [6, 2])], { equation: a.s('bij,jk->bik'), N: a.i(2) });
    for (const name of ['mean', 'sum', 'max', 'min', 'prod', 'argmax', 'softmax', 'bmm', 'einsum']) b.output(name);
    void reduced;
  });
});

test('resize bilinear and nearest in every coordinate mode, depth to space', async () => {
  await convertAndVerify((b) => {
    const x = b.placeholder('x', [1, 5, 7, 4]);
    const size = b.ints('size', [9, 12]);
    const modes = [{ align_corners: a.b(false), half_pixel_centers: a.b(true) }, { align_corners: a.b(true), half_pixel_centers: a.b(false) }, { align_corners: a.b(false), half_pixel_centers: a.b(false) }];
    modes.forEach((m, i) => {
      b.output(b.node('ResizeBilinear', `bilinear${i}`, [x, size], m));
      b.output(b.node('ResizeNearestNeighbor', `nearest${i}`, [x, size], m));
    });
    b.output(b.node('DepthToSpace', 'd2s', [x], { block_size: a.i(2), data_format: a.s('NHWC') }));
  });
});

test('quantized weights (uint8 and uint16 affine, float16) decode as tfjs decodes them', async () => {
  const { graph } = await convertAndVerify((b) => {
    const x = b.placeholder('x', [-1, 6]);
    const w8 = b.constant('w8', [6, 5], undefined, 'float32', 'uint8');
    const w16 = b.constant('w16', [5, 4], undefined, 'float32', 'uint16');
    const wh = b.constant('wh', [4, 3], undefined, 'float32', 'float16');
    const h = b.node('MatMul', 'm1', [x, w8], { transpose_a: a.b(false), transpose_b: a.b(false) });
    const h2 = b.node('MatMul', 'm2', [h, w16], { transpose_a: a.b(false), transpose_b: a.b(false) });
    b.output(b.node('MatMul', 'm3', [h2, wh], { transpose_a: a.b(false), transpose_b: a.b(false) }));
  });
  assert.ok(graph.initializers.every((i) => i.dtype === 'float32'), 'quantized weights are float32 initializers');
});
