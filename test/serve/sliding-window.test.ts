/**
 * Generation past the context: 4x the context length through both Transformer decoders (the
 * slab that keeps the cache, the concat one that feeds present.* back), each step's logits
 * against a fresh run of the model over the same window (docs/FORMATS.md, "Past the context").
 */
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { after, test } from 'node:test';
import * as ort from 'onnxruntime-node';
import { exportModel } from '../../src/export/index.ts';
import { languageModelSpec } from '../../src/export/lm/spec.ts';
import { createSession as createReferenceSession, initialState, runStep } from '../../src/export/runner.ts';
import { createDecoder, type Decoder } from '../../src/package/decoder.ts';
import type { Session } from '../../src/package/session.ts';
import { openRuntime } from '../../src/serve/runtime/index.ts';
import { slideModeOf } from '../../src/package/sliding-window.ts';
import { createRandom } from '../../src/serve/sampling.ts';
import { validateModelConfig } from '../../src/train/models/index.ts';
import { makeCheckpoint, tempDir, TINY_TRANSFORMER } from '../export/fixtures.ts';

const WINDOW = 8;
const STEPS = 4 * WINDOW;
const runtime = await openRuntime('cpu', () => {}, { worker: false });
const sessions: Session[] = [];
after(() => Promise.all(sessions.map((s) => s.release())));

async function exported(overrides: Record<string, unknown>) {
  const { dir } = await makeCheckpoint({ ...TINY_TRANSFORMER, blockSize: WINDOW, nEmbd: 16, nHead: 2, ...overrides }, { weightScale: 4, seed: 2 });
  const outDir = path.join(await tempDir(), 'pkg');
  await exportModel({ source: dir, outDir, verify: false });
  const manifest = JSON.parse(await readFile(path.join(outDir, 'ferry.json'), 'utf8'));
  return { modelPath: path.join(outDir, 'onnx/model.onnx'), manifest };
}

/** Two sequences (prompts of 3 and 5 tokens) fed seeded tokens until each has consumed 4x the window; every step's logits rows. */
async function slide(decoder: Decoder, vocab: number): Promise<{ sequences: number[][]; logits: Float32Array[][] }> {
  const random = createRandom(9);
  const sequences = [[1, 2, 3], [4, 5, 6, 7, 8]];
  const prefilled = await decoder.prefill(sequences);
  let states = prefilled.map((p) => p.state);
  const logits: Float32Array[][] = [[], []];
  while (sequences[0]!.length < STEPS) {
    const tokens = sequences.map(() => Math.floor(random() * vocab));
    const out = await decoder.step(states.map((state, i) => ({ state, token: tokens[i]! })));
    states = out.states;
    tokens.forEach((token, i) => {
      sequences[i]!.push(token);
      logits[i]!.push(out.logits.slice(i * vocab, (i + 1) * vocab));
    });
  }
  return { sequences, logits };
}

function maxAbsDiff(a: Float32Array, b: Float32Array): number {
  return a.reduce((max, x, i) => Math.max(max, Math.abs(x - b[i]!)), 0);
}

/** The last row of a fresh run over the last WINDOW tokens of `ids`. */
async function fresh(reference: ort.InferenceSession, spec: ReturnType<typeof languageModelSpec>, ids: number[]): Promise<Float32Array> {
  const window = ids.slice(-WINDOW);
  const { logits } = await runStep(reference, spec, [window], initialState(spec, 1));
  return logits.slice((window.length - 1) * spec.vocabSize);
}

for (const [label, overrides, exact] of [
  ['learned positions, 2 layers (re-encode)', { positional: 'learned', nLayer: 2 }, true],
  ['RoPE, 1 layer (rolled cache)', { positional: 'rope', nLayer: 1 }, true],
  ['ALiBi, 1 layer (rolled cache)', { positional: 'alibi', nLayer: 1 }, true],
  ['RoPE, 2 layers (rolled cache: sliding-window attention)', { positional: 'rope', nLayer: 2 }, false],
] as const) {
  test(`${label}: 4x the context, every step against a fresh run over the window`, async () => {
    const { modelPath, manifest } = await exported(overrides);
    const config = validateModelConfig(manifest.model);
    const spec = languageModelSpec(config);
    const reference = await createReferenceSession(await readFile(modelPath));
    const runs: Awaited<ReturnType<typeof slide>>[] = [];
    for (const ownCache of [true, false]) {
      const session = await runtime.createSession(modelPath, {});
      sessions.push(session);
      const decoder = createDecoder(session, manifest.state, config.vocabSize, WINDOW, { ownCache, slide: slideModeOf(manifest.model) });
      assert.equal(decoder.slides, true);
      runs.push(await slide(decoder, config.vocabSize));
    }
    const [slab, concat] = runs as [Awaited<ReturnType<typeof slide>>, Awaited<ReturnType<typeof slide>>];
    let worstWithin = 0;
    let worstBeyond = 0;
    for (let i = 0; i < 2; i++) {
      const promptLength = i === 0 ? 3 : 5;
      for (let step = 0; step < slab.logits[i]!.length; step++) {
        const consumed = slab.sequences[i]!.slice(0, promptLength + step + 1);
        assert.ok(maxAbsDiff(slab.logits[i]![step]!, concat.logits[i]![step]!) < 1e-4, `${label}: slab and concat decoders agree at step ${step}`);
        const diff = maxAbsDiff(slab.logits[i]![step]!, await fresh(reference, spec, consumed));
        if (consumed.length <= WINDOW) worstWithin = Math.max(worstWithin, diff);
        else worstBeyond = Math.max(worstBeyond, diff);
      }
    }
    assert.ok(worstWithin < 1e-4, `within the context: ${worstWithin}`);
    if (exact) assert.ok(worstBeyond < 1e-4, `past the context, every step equals a fresh run over its window: ${worstBeyond}`);
    else assert.ok(worstBeyond > 1e-3, `a second layer's cached keys remember tokens before the window (${worstBeyond}), as documented`);
    await reference.release();
  });
}
