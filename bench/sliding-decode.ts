/**
 * Decode step time past the context (issue #16's target: at position 1,000 within 1.2x of the
 * step at position 100 for RoPE/ALiBi). Random-weight nanogpt-cpu shapes with a context of 256
 * and each positional kind, exported and decoded by the server's slab decoder under its sliding
 * window, one sequence, one ORT thread; medians of the 21 steps around positions 100, 240 (full
 * context, not sliding yet) and 1,000.
 *
 *   node --import tsx bench/sliding-decode.ts
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { exportModel } from '../src/export/index.ts';
import { createDecoder } from '../src/package/decoder.ts';
import { slideModeOf } from '../src/package/sliding-window.ts';
import { openRuntime } from '../src/serve/runtime/index.ts';
import { trainTokenizer } from '../src/tokenizer/index.ts';
import { saveCheckpoint } from '../src/train/checkpoint.ts';
import { createModel, PRESETS, type ModelConfig, type Positional } from '../src/train/models/index.ts';

const CONTEXT = 256;
const LAST = 1010;
const root = await mkdtemp(path.join(tmpdir(), 'ferry-sliding-'));
const tokenizer = await trainTokenizer('char', ["\n !$&',-.3:;?ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"], { byteFallback: false });
const runtime = await openRuntime('cpu', () => {}, { worker: false });
const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!;
try {
  for (const positional of ['rope', 'alibi', 'learned'] as Positional[]) {
    const config = { ...PRESETS['nanogpt-cpu']!.transformer!, blockSize: CONTEXT, positional, vocabSize: tokenizer.vocabSize } as ModelConfig;
    const checkpoint = path.join(root, positional);
    await saveCheckpoint(checkpoint, {
      model: createModel(config, { seed: 1 }), tokenizer,
      manifest: { model: config, training: { step: 0, corpusHash: 'sha256:none', backend: 'cpu', seed: 1, valLoss: null, seconds: 0, hyperparameters: {} } },
    });
    const pkg = path.join(root, `${positional}-pkg`);
    await exportModel({ source: checkpoint, outDir: pkg, verify: false });
    const session = await runtime.createSession(path.join(pkg, 'onnx/model.onnx'), { intraOpThreads: 1 });
    const decoder = createDecoder(session, { kind: 'kv', layers: 4, heads: 4, headDim: 32 }, tokenizer.vocabSize, CONTEXT, { ownCache: true, slide: slideModeOf(config) });
    let { state } = (await decoder.prefill([[1]]))[0]!;
    const times = new Map<number, number>();
    for (let position = 1; position <= LAST; position++) {
      const started = performance.now();
      state = (await decoder.step([{ state, token: position % tokenizer.vocabSize }])).states[0]!;
      times.set(position, performance.now() - started);
    }
    const around = (center: number) => median(Array.from({ length: 21 }, (_, i) => times.get(center - 10 + i)!));
    // 240: the full context just before the window starts to slide, so sliding's own cost shows apart from the longer past.
    const [at100, at240, at1000] = [around(100), around(240), around(1000)];
    console.log(`${positional.padEnd(8)} step at position 100: ${at100.toFixed(3)} ms, 240: ${at240.toFixed(3)} ms, 1,000: ${at1000.toFixed(3)} ms; ` +
      `1,000 vs 100 ${(at1000 / at100).toFixed(2)}x, vs 240 ${(at1000 / at240).toFixed(2)}x`);
    await session.release();
  }
} finally {
  await rm(root, { recursive: true, force: true });
}
