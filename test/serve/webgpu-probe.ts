// Child process of runtime.test.ts: onnxruntime-node's WebGPU EP needs Vulkan in the process's
// environment from the start (SwiftShader from Debian's chromium here), so it runs on its own.
// Prints, per package dir given, the logits of a prefill and a batched step on cpu and webgpu.
import { createDecoder } from '../../src/package/decoder.ts';
import { loadPackage } from '../../src/serve/package.ts';
import { openRuntime } from '../../src/serve/runtime/index.ts';

const results: Record<string, Record<string, { provider: string; logits: number[] }>> = {};
for (const dir of process.argv.slice(2)) {
  const pkg = await loadPackage(dir);
  results[dir] = {};
  for (const device of ['cpu', 'webgpu']) {
    const session = await (await openRuntime(device, (m) => console.error(m))).createSession(pkg.modelPath);
    const decoder = createDecoder(session, pkg.manifest.state, pkg.manifest.model.vocabSize, pkg.manifest.contextLength);
    const prefilled = await decoder.prefill([pkg.tokenizer.encode('to be, or'), pkg.tokenizer.encode('not')]);
    const stepped = await decoder.step(prefilled.map((p, i) => ({ state: p.state, token: i + 3 })));
    results[dir][device] = { provider: session.provider, logits: [...prefilled.flatMap((p) => [...p.logits]), ...stepped.logits] };
    await session.release();
  }
}
console.log(JSON.stringify(results));
