import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { FerryError } from '../../src/errors.ts';
import { createDecoder } from '../../src/package/decoder.ts';
import { loadPackage } from '../../src/serve/package.ts';
import { openRuntime } from '../../src/serve/runtime/index.ts';
import { buildPackages, type TestPackages } from './packages.ts';
import { cp, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';

let packages: TestPackages;
before(async () => {
  packages = await buildPackages();
});
after(() => packages.remove());

test('--device cuda without the CUDA EP falls back to cpu with one warning for all sessions', async () => {
  const warnings: string[] = [];
  const runtime = await openRuntime('cuda', (m) => warnings.push(m));
  const pkg = await loadPackage(packages.lstm);
  const first = await runtime.createSession(pkg.modelPath);
  const second = await runtime.createSession(pkg.modelPath);
  assert.equal(first.provider, 'onnxruntime-node cpu');
  assert.equal(second.provider, 'onnxruntime-node cpu');
  assert.equal(warnings.length, 1);
  assert.match(warnings[0]!, /^device cuda: the CUDA execution provider is unavailable .*falling back to cpu/);
  await first.release();
  await second.release();
});

test('onnxruntime-web (wasm) gives the logits onnxruntime-node (cpu) gives, through the same interface', async () => {
  for (const dir of [packages.lstm, packages.transformer]) {
    const pkg = await loadPackage(dir);
    const logits: Float32Array[] = [];
    for (const device of ['cpu', 'wasm']) {
      const session = await (await openRuntime(device, () => {})).createSession(pkg.modelPath);
      assert.equal(session.provider, device === 'cpu' ? 'onnxruntime-node cpu' : 'onnxruntime-web wasm');
      const decoder = createDecoder(session, pkg.manifest.state, pkg.manifest.model.vocabSize, pkg.manifest.contextLength);
      const { state } = (await decoder.prefill([pkg.tokenizer.encode('to be, or')]))[0]!;
      logits.push((await decoder.step([{ state, token: 3 }, { state, token: 4 }])).logits);
      await session.release();
    }
    const maxDiff = Math.max(...logits[0]!.map((v, i) => Math.abs(v - logits[1]![i]!)));
    assert.ok(maxDiff < 1e-4, `${pkg.manifest.arch}: max |cpu - wasm| = ${maxDiff}`);
  }
});

test('a session in a worker thread gives the logits of one on the main thread and lets the process exit after release', async () => {
  const pkg = await loadPackage(packages.transformer);
  const byMode: Record<string, Float32Array> = {};
  for (const ownCache of [false, true]) {
    for (const worker of [false, true]) {
      const session = await (await openRuntime('cpu', () => {}, { worker })).createSession(pkg.modelPath);
      const decoder = createDecoder(session, pkg.manifest.state, pkg.manifest.model.vocabSize, pkg.manifest.contextLength, { ownCache });
      const prefilled = await decoder.prefill([pkg.tokenizer.encode('to be'), pkg.tokenizer.encode('or not to')]);
      const logits = prefilled.flatMap((p) => [...p.logits]);
      // Two steps of both, then the first leaves: the KV cache (lent to the worker and back) must survive each.
      let states = prefilled.map((p) => p.state);
      for (const tokens of [[2, 3], [4, 5], [6]]) {
        const stepped = await decoder.step(tokens.map((token, i) => ({ state: states[i + states.length - tokens.length]!, token })));
        logits.push(...stepped.logits);
        states = stepped.states;
      }
      byMode[`${ownCache ? 'own cache' : 'concat'}${worker ? ', worker' : ''}`] = Float32Array.from(logits);
      await session.release();
      if (worker) await assert.rejects(session.run({}), /exited|terminated/);
    }
  }
  assert.deepEqual(byMode['concat, worker'], byMode.concat);
  assert.deepEqual(byMode['own cache, worker'], byMode['own cache']);
  const maxDiff = Math.max(...byMode['own cache']!.map((v, i) => Math.abs(v - byMode.concat![i]!)));
  assert.ok(maxDiff < 1e-4, `own cache vs concat: max |diff| ${maxDiff}`);
});

const SWIFTSHADER = '/usr/lib/chromium/vk_swiftshader_icd.json';

test('--device webgpu (onnxruntime-node on Vulkan/SwiftShader) gives the cpu logits for both architectures', async (t) => {
  if (!existsSync(SWIFTSHADER)) {
    t.skip(`no software Vulkan driver at ${SWIFTSHADER} (Debian's chromium package provides one)`);
    return;
  }
  const { stdout } = await promisify(execFile)(process.execPath, ['--import', 'tsx', 'test/serve/webgpu-probe.ts', packages.lstm, packages.transformer], {
    env: { ...process.env, VK_ICD_FILENAMES: SWIFTSHADER, LD_LIBRARY_PATH: '/usr/lib/chromium' },
    maxBuffer: 64 << 20,
  });
  const results = JSON.parse(stdout) as Record<string, Record<string, { provider: string; logits: number[] }>>;
  for (const [dir, byDevice] of Object.entries(results)) {
    assert.equal(byDevice.webgpu!.provider, 'onnxruntime-node webgpu');
    const cpu = byDevice.cpu!.logits;
    const maxDiff = Math.max(...byDevice.webgpu!.logits.map((v, i) => Math.abs(v - cpu[i]!)));
    assert.ok(maxDiff < 1e-3, `${path.basename(dir)}: max |webgpu - cpu| = ${maxDiff}`);
  }
});

test('an unknown device is a FerryError listing the choices', async () => {
  await assert.rejects(openRuntime('tpu', () => {}), (e: unknown) => e instanceof FerryError && /unknown device "tpu"/.test(e.message) && /auto, cpu, cuda, webgpu, wasm/.test(e.hint!));
});

test('loadPackage names the bad field and the dir for a broken ferry.json', async () => {
  const broken = path.join(packages.root, 'broken');
  await cp(packages.transformer, broken, { recursive: true });
  const manifest = JSON.parse(await readFile(path.join(broken, 'ferry.json'), 'utf8'));
  const write = (m: unknown) => writeFile(path.join(broken, 'ferry.json'), JSON.stringify(m));
  const rejectsWith = (pattern: RegExp) => assert.rejects(loadPackage(broken), (e: unknown) => e instanceof FerryError && pattern.test(e.message) && e.message.includes(broken));

  await write({ ...manifest, contextLength: 'long' });
  await rejectsWith(/field "contextLength"/);
  await write({ ...manifest, state: { ...manifest.state, heads: 0 } });
  await rejectsWith(/field "state.heads"/);
  await write({ ...manifest, inputs: manifest.inputs.filter((i: { name: string }) => i.name !== 'position_ids') });
  await rejectsWith(/field "inputs" lacks position_ids/);
  await write({ ...manifest, files: { fp32: 'onnx/gone.onnx' } });
  await rejectsWith(/names onnx\/gone\.onnx, which does not exist/);
  await writeFile(path.join(broken, 'ferry.json'), '{ not json');
  await rejectsWith(/is not valid JSON/);
  await assert.rejects(loadPackage(path.join(packages.root, 'nothing')), (e: unknown) => e instanceof FerryError && /is not an ONNX package dir: ferry.json is missing/.test(e.message));
  await write(manifest);
  await assert.rejects(loadPackage(broken, { precision: 'int8' }), (e: unknown) => e instanceof FerryError && /has no int8 model/.test(e.message));
});
