// The int8 and fp16 copies of a T5 package (Optimum's names): every weight of both graphs
// converted, the merged decoder's If branch included; each copy checked against the fp32 graphs
// (teacher-forced logits, step-by-step decoding with both caches); valid for the ONNX checker; and
// served by `ferry generate --precision` as its own files decode. Weights are seeded draws at
// training's initialisation (src/train/models/t5-config.ts t5StateDict's std), where a T5 starts.
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import * as ort from 'onnxruntime-node';
import { FerryError } from '../../src/errors.ts';
import type { Graph } from '../../src/export/graph.ts';
import { writePackageDir } from '../../src/export/package.ts';
import { createSession } from '../../src/export/runner.ts';
import { t5DecoderGraph, t5EncoderGraph, type T5WeightMap } from '../../src/export/t5/graph.ts';
import { T5_VARIANT_FILES, t5PackageFiles } from '../../src/export/t5/package.ts';
import { buildT5Variants, T5_VARIANT_BOUNDS, verifyT5Variant, type T5Variants } from '../../src/export/t5/variants.ts';
import { parseManifest } from '../../src/package/index.ts';
import { wrapOrtSession } from '../../src/package/ort-session.ts';
import { createSeq2SeqDecoder, greedySeq2Seq } from '../../src/package/seq2seq.ts';
import { mulberry32 } from '../../src/random.ts';
import { generateText } from '../../src/serve/generate.ts';
import type { Tokenizer } from '../../src/tokenizer/index.ts';
import { trainT5Tokenizer } from '../../src/tokenizer/t5.ts';
import { t5StateDict, type T5Config } from '../../src/train/models/t5-config.ts';
import { checkModels } from './checker.ts';
import { tinyT5Config } from './t5-fixtures.ts';

/** Normal draws with t5StateDict's std (norms 1), as the tfjs model initialises. */
function initT5Weights(config: T5Config, seed: number): T5WeightMap {
  const random = mulberry32(seed);
  const normal = () => Math.sqrt(-2 * Math.log(1 - random())) * Math.cos(2 * Math.PI * random());
  return new Map(t5StateDict(config).map(({ name, shape, std }) => [name, {
    shape, data: Float32Array.from({ length: shape.reduce((a, b) => a * b, 1) }, () => (std === 'ones' ? 1 : normal() * std)),
  }]));
}

/** Every graph of a model: the top one and its If branches. */
function graphsOf(g: Graph): Graph[] {
  return [g, ...g.nodes.flatMap((n) => Object.values(n.attributes).flatMap((a) => (a.kind === 'graph' ? graphsOf(a.value) : [])))];
}

// Wide enough that every linear holds at least 256 weights (smaller ones stay float32).
const shape = { dModel: 32, dKv: 8, nHeads: 4, dFf: 64 };

for (const tieWeights of [false, true]) {
  describe(`T5 int8 and fp16 copies (${tieWeights ? 'tied' : 'untied'} head)`, () => {
    let tokenizer: Tokenizer;
    let config: T5Config;
    let weights: T5WeightMap;
    let variants: T5Variants;
    let root: string;
    let dir: string;

    before(async () => {
      tokenizer = await trainT5Tokenizer('char', ['the cat sat on the mat', 'a dog', 'der Hund', 'zwei kleine Katzen']);
      config = tinyT5Config({ ...shape, vocabSize: tokenizer.vocabSize, tieWeights });
      weights = initT5Weights(config, tieWeights ? 31 : 8);
      variants = await buildT5Variants(config, weights, 17, { int8: true, fp16: true, tokenizer });
      root = await mkdtemp(path.join(tmpdir(), 'ferry-t5q-'));
      dir = path.join(root, 'tiny-t5');
      await writePackageDir(dir, t5PackageFiles(config, weights, tokenizer, 17, 'tiny-t5', variants));
    });
    after(() => rm(root, { recursive: true, force: true }));

    test('each copy keeps to its bounds against the fp32 graphs, teacher-forced and step by step', () => {
      for (const key of ['int8', 'fp16'] as const) {
        const parity = variants.parity[key]!;
        const scale = Math.max(1, parity.scale);
        assert.equal(parity.tolerance, T5_VARIANT_BOUNDS[key].relativeToFp32 * scale);
        assert.equal(parity.incrementalTolerance, T5_VARIANT_BOUNDS[key].incremental * scale);
        assert.ok(parity.maxAbsDiff > 0 && parity.maxAbsDiff <= parity.tolerance, `${key} ${parity.maxAbsDiff} vs ${parity.tolerance}`);
        assert.ok(parity.incrementalMaxAbsDiff <= parity.incrementalTolerance, `${key} ${parity.incrementalMaxAbsDiff} vs ${parity.incrementalTolerance}`);
        assert.equal(parity.cases.length, 4, 'right and left padding, teacher-forced and step by step');
        assert.ok(parity.bytes < parity.fp32Bytes * 0.7, `${key} ${parity.bytes} bytes vs fp32 ${parity.fp32Bytes}`);
        console.log(`tied=${tieWeights} ${key}: vs fp32 ${parity.maxAbsDiff.toExponential(2)} (bound ${parity.tolerance.toExponential(2)}), step by step ${parity.incrementalMaxAbsDiff.toExponential(2)}, greedy as fp32 ${parity.greedySame}/${parity.sources}`);
      }
      // fp16 runs in float32 from rounded weights: a cache step computes what the full run does.
      assert.ok(variants.parity.fp16!.incrementalMaxAbsDiff < 1e-4);
    });

    test('int8: no float32 weight is left in either graph, the decoder\'s first-step branch included', () => {
      for (const graph of [variants.encoder.int8!, variants.decoder.int8!]) {
        for (const g of graphsOf(graph)) {
          // The scales (one per column or table row) are the only float32 vectors that long.
          const float = g.initializers.filter((i) => i.dtype === 'float32' && i.data.length >= 256 && !/_scale(_\d+)?$/.test(i.name));
          assert.deepEqual(float.map((i) => i.name), [], `${graph.name}/${g.name}`);
          assert.ok(!g.nodes.some((n) => n.opType === 'MatMul' && g.initializers.some((i) => i.name === n.inputs[1])), `${g.name}: a MatMul of a weight is left`);
        }
      }
      const [top, ...branches] = graphsOf(variants.decoder.int8!);
      const integerMatMuls = (name: string) => branches.find((g) => g.name.startsWith(name))!.nodes.filter((n) => n.opType === 'MatMulInteger').length;
      // Per layer self-attention q+k+v (one kernel), o, cross-attention q, o, feed-forward
      // wi_0+wi_1 and wo in both branches; the first step computes the cross-attention K+V too.
      assert.equal(integerMatMuls('with_cache'), 6 * config.nDecoderLayers);
      assert.equal(integerMatMuls('first_step'), 7 * config.nDecoderLayers);
      // Each weight stored once, in the outer graph, which both branches read: 7 per layer, the
      // embedding rows and the head.
      assert.equal(top!.initializers.filter((i) => i.dtype === 'int8').length, 7 * config.nDecoderLayers + 2);
      assert.deepEqual(branches.flatMap((g) => g.initializers.filter((i) => i.dtype === 'int8').map((i) => i.name)), []);
    });

    test('fp16: every weight of both graphs is stored as float16', () => {
      for (const graph of [variants.encoder.fp16!, variants.decoder.fp16!]) {
        const big = graphsOf(graph).flatMap((g) => g.initializers.filter((i) => i.data.length >= 256));
        assert.ok(big.length >= 4 * config.nEncoderLayers, `${big.length} weights`);
        assert.deepEqual(big.filter((i) => i.dtype !== 'float16').map((i) => i.name), []);
      }
    });

    test('the package lists the copies under Optimum\'s names; the ONNX checker accepts every file', async () => {
      const manifest = parseManifest(JSON.parse(await readFile(path.join(dir, 'ferry.json'), 'utf8')), 'ferry.json');
      assert.equal(manifest.arch, 't5');
      if (manifest.arch !== 't5') return;
      assert.deepEqual(manifest.files, { fp32: 'onnx/decoder_model_merged.onnx', int8: 'onnx/decoder_model_merged_quantized.onnx', fp16: 'onnx/decoder_model_merged_fp16.onnx' });
      assert.deepEqual(manifest.encoderFiles, { fp32: 'onnx/encoder_model.onnx', int8: 'onnx/encoder_model_quantized.onnx', fp16: 'onnx/encoder_model_fp16.onnx' });
      assert.deepEqual(Object.keys(manifest.parity ?? {}).sort(), ['fp16', 'int8']);
      assert.equal(manifest.parity!.int8!.maxAbsDiff, variants.parity.int8!.maxAbsDiff);
      const files = [...Object.values(manifest.files), ...Object.values(manifest.encoderFiles)].map((f) => path.join(dir, f!));
      const { checked, skipped } = await checkModels(files);
      assert.equal(checked + skipped, 6);
    });

    test('ferry generate --precision int8 / fp16 gives the greedy target its own files decode to', async () => {
      const source = 'the cat sat';
      const ids = [...tokenizer.encode(source), 1];
      for (const key of ['int8', 'fp16'] as const) {
        const session = async (file: string) => wrapOrtSession(ort.Tensor, await createSession(await readFile(path.join(dir, file))), 'onnxruntime-node cpu');
        const decoder = createSeq2SeqDecoder(await session(T5_VARIANT_FILES[key].encoder), await session(T5_VARIANT_FILES[key].decoder), {
          vocabSize: config.vocabSize, decoderLayers: config.nDecoderLayers, heads: config.nHeads, headDim: config.dKv, startId: 0, eosId: 1, padId: 0,
        });
        const [expected] = await greedySeq2Seq(decoder, [ids], 10);
        let written = '';
        const text = await generateText(dir, { prompt: source, max_tokens: 10, temperature: 0 }, {
          device: 'cpu', precision: key, stream: false, write: (t) => (written += t), log: () => {},
        });
        assert.equal(text, tokenizer.decode(expected!), key);
        assert.equal(written, `${text}\n`);
      }
    });
  });
}

describe('T5 copies: what the checks refuse', () => {
  test('an int8 decoder whose cross-attention K/V weights (first step only) are misscaled fails its check', async () => {
    const config = tinyT5Config({ ...shape, vocabSize: 40 });
    const weights = initT5Weights(config, 3);
    const variants = await buildT5Variants(config, weights, 17, { int8: true });
    const fp32 = { encoder: t5EncoderGraph(config, weights, 17), decoder: t5DecoderGraph(config, weights, 17) };
    const broken = variants.decoder.int8!;
    // The scales of the weights the first step applies to the encoder states (cross-attention K, V).
    const [top, ...branches] = graphsOf(broken);
    const firstStep = branches.find((g) => g.name.startsWith('first_step'))!;
    const quantized = firstStep.nodes.filter((n) => n.opType === 'DynamicQuantizeLinear' && n.inputs[0] === 'encoder_hidden_states').map((n) => n.outputs[1]!);
    const scaleNames = new Set(firstStep.nodes.filter((n) => n.opType === 'Mul' && quantized.includes(n.inputs[0]!)).map((n) => n.inputs[1]!));
    const scales = top!.initializers.filter((i) => scaleNames.has(i.name));
    assert.equal(scales.length, config.nDecoderLayers, 'one K+V kernel per layer');
    for (const init of scales) init.data = (init.data as Float32Array).map((x) => x * 3);
    await assert.rejects(verifyT5Variant('int8', config, fp32, { encoder: variants.encoder.int8!, decoder: broken }), (e: unknown) => {
      assert.ok(e instanceof FerryError && e.code === 'export_parity', String(e));
      assert.match(e.message, /int8 copy of the T5 graphs fails its parity check: its teacher-forced logits differ/);
      return true;
    });
  });

  test('a package whose int8 decoder has no int8 encoder is refused by the schema', () => {
    const manifest = {
      format: 'ferry-onnx', version: 1, name: 't', arch: 't5', hfConfig: 'config.json',
      files: { fp32: 'onnx/decoder_model_merged.onnx', int8: 'onnx/decoder_model_merged_quantized.onnx', fp16: null },
      encoderFiles: { fp32: 'onnx/encoder_model.onnx', int8: null, fp16: null },
      model: { vocabSize: 40, nHeads: 4, dKv: 8, nDecoderLayers: 2, maxSourceLength: 32 },
    };
    assert.throws(() => parseManifest(manifest, 'x/ferry.json'), (e: unknown) => e instanceof FerryError && /encoderFiles\.int8/.test(e.message) && /both name a file or both be null/.test(e.message));
  });
});
