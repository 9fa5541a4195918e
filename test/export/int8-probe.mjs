// Prints, as JSON, the logits onnxruntime-node computes for each file of the packages named on
// the command line, on fixed inputs. int8-cpus.test.ts runs it natively and under qemu's
// emulation of an AVX2-only CPU. Plain JavaScript: under emulation every module load is slow.
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import * as ort from 'onnxruntime-node';

function feeds(manifest, batch, seq) {
  const ids = BigInt64Array.from({ length: batch * seq }, (_, i) => BigInt((i * 7 + 3) % manifest.model.vocabSize));
  const positions = BigInt64Array.from({ length: batch * seq }, (_, i) => BigInt(i % seq));
  const result = {};
  for (const input of manifest.inputs) {
    if (input.name === 'input_ids') result[input.name] = new ort.Tensor('int64', ids, [batch, seq]);
    else if (input.name === 'attention_mask') result[input.name] = new ort.Tensor('int64', new BigInt64Array(batch * seq).fill(1n), [batch, seq]);
    else if (input.name === 'position_ids') result[input.name] = new ort.Tensor('int64', positions, [batch, seq]);
    else if (input.shape.length === 4) result[input.name] = new ort.Tensor('float32', new Float32Array(0), [batch, input.shape[1], 0, input.shape[3]]);
    else result[input.name] = new ort.Tensor('float32', new Float32Array(batch * input.shape[1]).fill(0.1), [batch, input.shape[1]]);
  }
  return result;
}

/**
 * A T5 package's pair of each precision: the encoder over two fixed sources (the second
 * right-padded), the merged decoder's first step over three teacher-forced tokens, then one step
 * with both caches: the logits of both steps, so that both branches of its If are run.
 */
async function t5Logits(dir, manifest, precision) {
  const open = async (file) => ort.InferenceSession.create(await readFile(path.join(dir, file)), { intraOpNumThreads: 1 });
  const [encoder, decoder] = [await open(manifest.encoderFiles[precision]), await open(manifest.files[precision])];
  const [batch, length] = [2, 6];
  const ids = BigInt64Array.from({ length: batch * length }, (_, i) => BigInt(i === batch * length - 1 ? 0 : 2 + ((i * 7 + 3) % (manifest.model.vocabSize - 2))));
  const mask = BigInt64Array.from({ length: batch * length }, (_, i) => (i === batch * length - 1 ? 0n : 1n));
  const encoderMask = new ort.Tensor('int64', mask, [batch, length]);
  const { last_hidden_state: states } = await encoder.run({ input_ids: new ort.Tensor('int64', ids, [batch, length]), attention_mask: encoderMask });
  const { nHeads, dKv, nDecoderLayers } = manifest.model;
  const empty = () => new ort.Tensor('float32', new Float32Array(0), [batch, nHeads, 0, dKv]);
  const step = async (tokens, past, cached) => {
    const feeds = { encoder_attention_mask: encoderMask, encoder_hidden_states: states, input_ids: new ort.Tensor('int64', BigInt64Array.from(tokens.flat(), BigInt), [batch, tokens[0].length]), use_cache_branch: new ort.Tensor('bool', [cached], [1]) };
    for (let l = 0; l < nDecoderLayers; l++) for (const cache of ['decoder', 'encoder']) for (const part of ['key', 'value']) feeds[`past_key_values.${l}.${cache}.${part}`] = past?.[`${l}.${cache}.${part}`] ?? empty();
    return decoder.run(feeds);
  };
  const first = await step([[0, 5, 9], [0, 7, 3]], undefined, false);
  const past = {};
  for (let l = 0; l < nDecoderLayers; l++) for (const cache of ['decoder', 'encoder']) for (const part of ['key', 'value']) past[`${l}.${cache}.${part}`] = first[`present.${l}.${cache}.${part}`];
  const second = await step([[4], [6]], past, true);
  await encoder.release();
  await decoder.release();
  return [...first.logits.data, ...second.logits.data];
}

const logits = {};
for (const dir of process.argv.slice(2)) {
  const manifest = JSON.parse(await readFile(path.join(dir, 'ferry.json'), 'utf8'));
  if (manifest.arch === 't5') {
    for (const [precision, file] of Object.entries(manifest.files).filter(([, f]) => f)) logits[`${path.basename(dir)}/${file}`] = await t5Logits(dir, manifest, precision);
    continue;
  }
  for (const file of Object.values(manifest.files).filter(Boolean)) {
    const session = await ort.InferenceSession.create(await readFile(path.join(dir, file)), { intraOpNumThreads: 1 });
    const out = await session.run(feeds(manifest, 2, 7), ['logits']);
    logits[`${path.basename(dir)}/${file}`] = Array.from(out.logits.data);
    await session.release();
  }
}
process.stdout.write(JSON.stringify(logits));
