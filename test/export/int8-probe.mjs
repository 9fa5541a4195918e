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

const logits = {};
for (const dir of process.argv.slice(2)) {
  const manifest = JSON.parse(await readFile(path.join(dir, 'ferry.json'), 'utf8'));
  for (const file of Object.values(manifest.files).filter(Boolean)) {
    const session = await ort.InferenceSession.create(await readFile(path.join(dir, file)), { intraOpNumThreads: 1 });
    const out = await session.run(feeds(manifest, 2, 7), ['logits']);
    logits[`${path.basename(dir)}/${file}`] = Array.from(out.logits.data);
    await session.release();
  }
}
process.stdout.write(JSON.stringify(logits));
