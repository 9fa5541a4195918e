/**
 * Damaged graph models for the fuzz: one small valid tfjs graph model (a fused conv, a pool, a
 * reshape, a dense layer and a softmax: the ops a converted image classifier has) and seeded
 * fast-check arbitraries that damage one part of it the way a broken tool, a bad copy or an
 * attacker would: an attribute of the wrong type, an input removed or pointing nowhere, a cycle,
 * a dtype or shape changed, a weight manifest entry changed, a shard cut or overwritten.
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import fc from 'fast-check';
import { a, GraphModelBuilder } from './builder.ts';
import { mutate, pathsOf, type Json } from '../../json-mutation.ts';

export const SHARD = 'group1-shard1of1.bin';

const window = { data_format: a.s('NHWC'), padding: a.s('SAME'), strides: a.ints([1, 1, 1, 1]), dilations: a.ints([1, 1, 1, 1]) };

/** The valid model the fuzz damages: model.json's JSON and its shard's bytes. */
export async function validGraphModel(dir: string): Promise<{ json: GraphModelJsonLike; shard: Buffer }> {
  const b = new GraphModelBuilder();
  const x = b.placeholder('image', [-1, 8, 8, 3]);
  const conv = b.node('_FusedConv2D', 'conv', [x, b.constant('w', [3, 3, 3, 4]), b.constant('b', [4])], { ...window, fused_ops: a.strings(['BiasAdd', 'Relu']), num_args: a.i(1) });
  const pool = b.node('MaxPool', 'pool', [conv], { ...window, strides: a.ints([1, 2, 2, 1]), ksize: a.ints([1, 2, 2, 1]) });
  const flat = b.node('Reshape', 'flat', [pool, b.ints('flat/shape', [-1, 64])], { Tshape: a.type('DT_INT32') });
  const dense = b.node('MatMul', 'dense', [flat, b.constant('dense/w', [64, 5])], { transpose_a: a.b(false), transpose_b: a.b(false) });
  const logits = b.node('AddV2', 'logits', [dense, b.constant('dense/b', [5])]);
  b.output(b.node('Softmax', 'probs', [logits]));
  const file = await b.write(dir);
  return { json: JSON.parse(await readFile(file, 'utf8')), shard: await readFile(path.join(path.dirname(file), SHARD)) };
}

export interface GraphModelJsonLike {
  modelTopology: { node: { name: string; op: string; input?: string[]; attr?: Record<string, unknown> }[] };
  weightsManifest: { paths: string[]; weights: { name: string; shape: number[]; dtype: string; quantization?: unknown }[] }[];
  signature?: unknown;
  [key: string]: unknown;
}

/** One damaged copy: model.json's text and the shard's bytes, and what was done (for the failure message). */
export interface Damage { what: string; json: string; shard: Buffer }

/** Values a careless tool or an attacker might put anywhere. */
const anything: fc.Arbitrary<Json | undefined> = fc.oneof(
  fc.constant(undefined),
  fc.constantFrom<Json>(null, true, 0, -1, 1e308, 2 ** 53, 0.5, '', 'x', '../../etc/passwd', [], {}, [0], 'float32', 'int32', 'DT_INT64', -0),
  fc.integer({ min: -3, max: 1000 }),
  fc.jsonValue({ maxDepth: 2 }) as fc.Arbitrary<Json>,
);

/** Attribute values of every kind, most of them the wrong kind for the attribute they replace. */
const attrValue: fc.Arbitrary<Json | undefined> = fc.oneof(
  fc.constantFrom<Json | undefined>(
    undefined, null, 5, 'x', {}, [],
    { s: 'TkNIVw==' }, { s: 5 }, { s: [] }, { i: 'abc' }, { i: '99999999999999999999' }, { i: -1 }, { i: {} }, { f: 'x' }, { f: null }, { b: 'yes' },
    { list: {} }, { list: null }, { list: { i: '1111' } }, { list: { i: [{}] } }, { list: { i: ['1', '1'] } }, { list: { i: ['0', '0', '0', '0'] } },
    { list: { i: ['-1', '-1', '-1', '-1'] } }, { list: { i: ['1', '1e9', '1', '1'] } }, { list: { s: 'QmlhcyBBZGQ=' } }, { list: { s: [5] } }, { list: { s: ['UmVsdQ=='] } },
    { type: 'DT_COMPLEX64' }, { type: 'DT_INT32' }, { type: 5 }, { shape: { dim: 'x' } }, { shape: { dim: [{ size: 'x' }] } }, { shape: { unknownRank: true } },
  ),
  anything,
);

/** Input references that resolve to nothing, to the wrong output, or to a control edge. */
const badRef = (names: string[]) => fc.oneof(
  fc.constantFrom('ghost', 'ghost:0', '^ghost', '', ':0', 'conv:7', 'probs:1', '^image', 'image:-1', 'w:0:0'),
  fc.constantFrom(...names).map((n) => `${n}:3`),
);

const dtypeName = fc.constantFrom<Json>('float32', 'int32', 'bool', 'float16', 'uint8', 'uint16', 'int64', 'complex64', 'string', '', 5, null);

/** A shape a weight manifest entry might wrongly carry. */
const badShape = fc.constantFrom<Json>([], [0], [-1], [64], [3, 3, 3], [3, 3, 3, 5], [1e9, 1e9], [2 ** 31, 2], [0.5], ['3'], ['x'], null, 'x', {}, [null], [3, 3, 3, -4]);

/** Damage to model.json; every kind is its own arbitrary so that each gets its share of the runs. */
export function damages(json: GraphModelJsonLike, shard: Buffer): fc.Arbitrary<Damage> {
  const nodes = json.modelTopology.node;
  const names = nodes.map((n) => n.name);
  const weights = json.weightsManifest[0]!.weights;
  const text = (value: unknown) => JSON.stringify(value) ?? '';
  const ofJson = (what: string, value: unknown): Damage => ({ what, json: text(value), shard });
  const nodeIndex = fc.nat({ max: nodes.length - 1 });
  const withInputs = nodes.flatMap((n, i) => (n.input?.length ? [i] : []));

  // Anything anywhere: model.json's generic JSON damage, as the loaders fuzz does it.
  const anywhere = fc.record({ at: fc.constantFrom(...pathsOf(json)), by: anything })
    .map(({ at, by }) => ofJson(`${at.join('.')} = ${text(by)}`, mutate(json, at, by)));

  const attribute = nodeIndex.chain((i) => {
    const keys = [...Object.keys(nodes[i]!.attr ?? {}), 'extra'];
    return fc.record({ key: fc.constantFrom(...keys), by: attrValue }).map(({ key, by }) =>
      ofJson(`node ${nodes[i]!.name} attr ${key} = ${text(by)}`, mutate(json, ['modelTopology', 'node', i, 'attr', key], by)));
  });

  const inputRemoved = fc.constantFrom(...withInputs).chain((i) => fc.nat({ max: nodes[i]!.input!.length - 1 }).map((k) =>
    ofJson(`node ${nodes[i]!.name} input ${k} removed`, mutate(json, ['modelTopology', 'node', i, 'input', k], undefined))));

  const inputsExtra = fc.constantFrom(...withInputs).chain((i) => fc.constantFrom(...names).map((extra) =>
    ofJson(`node ${nodes[i]!.name} gets an extra input ${extra}`, mutate(json, ['modelTopology', 'node', i, 'input'], [...nodes[i]!.input!, extra]))));

  const dangling = fc.constantFrom(...withInputs).chain((i) => fc.record({ k: fc.nat({ max: nodes[i]!.input!.length - 1 }), ref: badRef(names) }).map(({ k, ref }) =>
    ofJson(`node ${nodes[i]!.name} input ${k} = ${ref}`, mutate(json, ['modelTopology', 'node', i, 'input', k], ref))));

  // A node reads one that depends on it (or itself): a cycle.
  const cycle = fc.constantFrom(...withInputs).chain((i) => fc.record({ k: fc.nat({ max: nodes[i]!.input!.length - 1 }), later: fc.integer({ min: i, max: nodes.length - 1 }) }).map(({ k, later }) =>
    ofJson(`node ${nodes[i]!.name} input ${k} = ${nodes[later]!.name} (a cycle)`, mutate(json, ['modelTopology', 'node', i, 'input', k], nodes[later]!.name))));

  const nodeField = nodeIndex.chain((i) => fc.record({ field: fc.constantFrom('name', 'op', 'input', 'attr'), by: fc.oneof(anything, fc.constantFrom<Json>(...names, 'Conv2D', 'Const', 'Placeholder', 'MatMul', 'NoOp', 'Identity')) }).map(({ field, by }) =>
    ofJson(`node ${nodes[i]!.name}.${field} = ${text(by)}`, mutate(json, ['modelTopology', 'node', i, field], by))));

  const nodeRemoved = nodeIndex.map((i) => ofJson(`node ${nodes[i]!.name} removed`, mutate(json, ['modelTopology', 'node', i], undefined)));
  const nodeDuplicated = nodeIndex.chain((i) => fc.constantFrom(...names).map((as) =>
    ofJson(`node ${nodes[i]!.name} duplicated as ${as}`, { ...json, modelTopology: { ...json.modelTopology, node: [...nodes, { ...structuredClone(nodes[i]!), name: as }] } })));

  const placeholder = nodes.findIndex((n) => n.op === 'Placeholder');
  const inputDims = fc.constantFrom<Json>([], [{ size: '-1' }], [{ size: '0' }, { size: '8' }, { size: '8' }, { size: '3' }], [{ size: '-1' }, { size: '8' }, { size: '8' }, { size: '4' }],
    [{ size: '-1' }, { size: '1' }, { size: '1' }, { size: '3' }], [{ size: '-1' }, { size: '100000' }, { size: '100000' }, { size: '3' }], [{ size: 'x' }], [{}], 'x', [{ size: '-5' }, { size: '8' }, { size: '8' }, { size: '3' }]);
  const inputShape = inputDims.map((dims) => ofJson(`input shape dim = ${text(dims)}`, mutate(json, ['modelTopology', 'node', placeholder, 'attr', 'shape', 'shape', 'dim'], dims)));
  const inputDtype = fc.constantFrom('DT_INT32', 'DT_BOOL', 'DT_UINT8', 'DT_HALF', 'DT_INT64', 'DT_STRING', 'DT_COMPLEX64', 'float32').map((t) =>
    ofJson(`input dtype = ${t}`, mutate(json, ['modelTopology', 'node', placeholder, 'attr', 'dtype', 'type'], t)));
  const nodeType = nodeIndex.chain((i) => fc.constantFrom('DT_INT32', 'DT_BOOL', 'DT_HALF', 'DT_INT64', 'DT_STRING').map((t) =>
    ofJson(`node ${nodes[i]!.name} T = ${t}`, mutate(json, ['modelTopology', 'node', i, 'attr', 'T'], { type: t }))));

  const weightIndex = fc.nat({ max: weights.length - 1 });
  const manifestField = weightIndex.chain((i) => fc.oneof(
    dtypeName.map((d) => ['dtype', d] as const),
    badShape.map((s) => ['shape', s] as const),
    fc.constantFrom<Json>(...names, 'ghost', '', null, 5).map((n) => ['name', n] as const),
    fc.constantFrom<Json>({ dtype: 'uint8', scale: 0.1, min: -1 }, { dtype: 'uint8' }, { dtype: 'float16' }, { dtype: 'uint16', scale: 'x', min: null }, { dtype: 'int4' }, 'x', null, {}).map((q) => ['quantization', q] as const),
  ).map(([field, by]) => ofJson(`weight ${weights[i]!.name}.${field} = ${text(by)}`, mutate(json, ['weightsManifest', 0, 'weights', i, field], by))));
  const manifestEntry = fc.oneof(
    weightIndex.map((i) => ofJson(`weight ${weights[i]!.name} removed`, mutate(json, ['weightsManifest', 0, 'weights', i], undefined))),
    weightIndex.map((i) => ofJson(`weight ${weights[i]!.name} twice`, mutate(json, ['weightsManifest', 0, 'weights'], [...weights, weights[i]!] as unknown as Json))),
    fc.constantFrom<Json>([], ['ghost.bin'], [SHARD, SHARD], ['../' + SHARD], ['/etc/passwd'], [5], null, 'x', [`${SHARD}/..`]).map((paths) => ofJson(`paths = ${text(paths)}`, mutate(json, ['weightsManifest', 0, 'paths'], paths))),
    fc.constantFrom<Json>([], null, {}, [{}], [{ paths: [SHARD] }], [{ weights: [] }]).map((m) => ofJson(`weightsManifest = ${text(m)}`, mutate(json, ['weightsManifest'], m))),
  );

  const shardDamage = fc.oneof(
    fc.nat({ max: shard.length }).map((n) => ({ what: `shard cut to ${n} bytes`, bytes: shard.subarray(0, n) })),
    fc.uint8Array({ minLength: 1, maxLength: 64 }).map((extra) => ({ what: `shard grown by ${extra.length} bytes`, bytes: Buffer.concat([shard, extra]) })),
    fc.record({ at: fc.nat({ max: shard.length - 4 }), value: fc.constantFrom(0x7f800000, 0x7fc00000, 0xff800000, 0x00000001, 0x4e6e6b28) }).map(({ at, value }) => {
      const copy = Buffer.from(shard);
      copy.writeUInt32LE(value, at - (at % 4));
      return { what: `shard word ${at - (at % 4)} = 0x${value.toString(16)}`, bytes: copy };
    }),
  ).map(({ what, bytes }): Damage => ({ what, json: text(json), shard: bytes }));

  const cut = fc.nat({ max: text(json).length - 1 }).map((n): Damage => ({ what: `model.json cut to ${n} characters`, json: text(json).slice(0, n), shard }));

  return fc.oneof(anywhere, attribute, inputRemoved, inputsExtra, dangling, cycle, nodeField, nodeRemoved, nodeDuplicated, inputShape, inputDtype, nodeType, manifestField, manifestEntry, shardDamage, cut);
}
