// Property-based fuzz of every loader a user feeds files to: a tfjs model.json and its weight
// shard, tokenizer.json, ferry.json (a checkpoint's and a package's), corpus files. Each case is
// a valid file with one part replaced, removed or cut, or random bytes; the loader either loads
// it or refuses it with one FerryError whose message is one line, never anything else.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { cp, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import fc from 'fast-check';
import { FerryError } from '../src/errors.ts';
import { formatSummary, inspectModel } from '../src/export/inspect.ts';
import { readExportSource } from '../src/export/source.ts';
import { parseLanguageModelManifest } from '../src/package/parse.ts';
import { loadTokenizer } from '../src/tokenizer/index.ts';
import { readCheckpointManifest } from '../src/train/checkpoint.ts';
import { readCorpus } from '../src/train/data/corpus.ts';
import { buildPackages, type TestPackages } from './serve/packages.ts';
import { mutate, pathsOf, type Json } from './json-mutation.ts';

const RUNS = 1000;
let packages: TestPackages;
let work: string;
let checkpoint: string;
const valid: Record<string, unknown> = {};

before(async () => {
  packages = await buildPackages();
  checkpoint = path.join(packages.root, 'lstm-checkpoint');
  work = await mkdtemp(path.join(tmpdir(), 'ferry-fuzz-'));
  for (const [name, file] of [
    ['model.json', path.join(checkpoint, 'model.json')],
    ['checkpoint ferry.json', path.join(checkpoint, 'ferry.json')],
    ['tokenizer.json', path.join(packages.lstm, 'tokenizer.json')],
    ['package ferry.json', path.join(packages.lstm, 'ferry.json')],
  ] as const) valid[name] = JSON.parse(await readFile(file, 'utf8'));
});

after(async () => {
  await packages.remove();
  await rm(work, { recursive: true, force: true });
});

/** Loads, or refuses with one FerryError of one line. */
async function loadsOrRefuses(load: () => unknown): Promise<void> {
  try {
    await load();
  } catch (error) {
    assert.ok(error instanceof FerryError, `not a FerryError: ${error instanceof Error ? error.stack : String(error)}`);
    assert.ok(!error.message.includes('\n'), `a message of several lines: ${error.message}`);
    assert.ok(!/\n\s+at /.test(error.hint ?? ''), 'no stack trace in the hint');
  }
}

/** Values a careless tool or an attacker might put anywhere. */
const replacement: fc.Arbitrary<Json | undefined> = fc.oneof(
  fc.constant(undefined),
  fc.constantFrom<Json>(null, true, 0, -1, 1e308, 2 ** 53, 0.5, '', 'x', '../../etc/passwd', [], {}, [0], { type: 'BPE' }, 'float32', 'int64', -0),
  fc.integer({ min: -3, max: 1000 }),
  fc.jsonValue({ maxDepth: 2 }) as fc.Arbitrary<Json>,
);

/** A mutation of `value`: a path into it and what to put there. */
function mutations(value: unknown) {
  const paths = pathsOf(value);
  return fc.record({ at: fc.constantFrom(...paths), by: replacement });
}

test(`tokenizer.json: ${RUNS} mutated files load (and then encode and decode) or are one FerryError`, async () => {
  const file = valid['tokenizer.json'];
  await fc.assert(fc.asyncProperty(mutations(file), async ({ at, by }) => {
    await loadsOrRefuses(() => {
      const tokenizer = loadTokenizer(mutate(file, at, by));
      tokenizer.decode(tokenizer.encode('to be, or not 😀 <|endoftext|>'));
    });
  }), { numRuns: RUNS, seed: 14 });
});

test(`ferry.json of a package: ${RUNS} mutated manifests parse or are one FerryError`, async () => {
  const file = valid['package ferry.json'];
  await fc.assert(fc.asyncProperty(mutations(file), async ({ at, by }) => {
    await loadsOrRefuses(() => parseLanguageModelManifest(mutate(file, at, by), 'models/x/ferry.json'));
  }), { numRuns: RUNS, seed: 14 });
});

/** A dir holding the checkpoint's model.json and weight shard, with `name` replaced by `content`. */
async function modelDirWith(name: string, content: string | Uint8Array): Promise<string> {
  const dir = path.join(work, 'model');
  await rm(dir, { recursive: true, force: true });
  await mkdir(dir);
  for (const file of ['model.json', shardName()]) await cp(path.join(checkpoint, file), path.join(dir, file));
  await writeFile(path.join(dir, name), content);
  return dir;
}

const shardName = () => (valid['model.json'] as { weightsManifest: { paths: string[] }[] }).weightsManifest[0]!.paths[0]!;

// Found by this test: tfjs waits forever on some damaged layer graphs (unknown layer or node
// names, cycles, an inbound node with no inputs); checkLayerGraph refuses them before tfjs loads.
test(`model.json: ${RUNS} mutated files load in \`ferry export\` or are one FerryError`, async () => {
  const file = valid['model.json'];
  await fc.assert(fc.asyncProperty(mutations(file), async ({ at, by }) => {
    const dir = await modelDirWith('model.json', JSON.stringify(mutate(file, at, by)) ?? '');
    await loadsOrRefuses(() => readExportSource(dir).then((source) => source.model.dispose()));
  }), { numRuns: RUNS, seed: 14 });
});

test(`model.json: ${RUNS} mutated files are summarized by \`ferry inspect\` or are one FerryError`, async () => {
  const file = valid['model.json'];
  await fc.assert(fc.asyncProperty(mutations(file), async ({ at, by }) => {
    const dir = await modelDirWith('model.json', JSON.stringify(mutate(file, at, by)) ?? '');
    await loadsOrRefuses(async () => formatSummary('model.json', await inspectModel(path.join(dir, 'model.json'))));
  }), { numRuns: RUNS, seed: 14 });
});

test(`ferry.json of a checkpoint: ${RUNS} mutated files read (as --resume and export read them) or are one FerryError`, async () => {
  const file = valid['checkpoint ferry.json'];
  const dir = path.join(work, 'checkpoint');
  await mkdir(dir, { recursive: true });
  await fc.assert(fc.asyncProperty(mutations(file), async ({ at, by }) => {
    await writeFile(path.join(dir, 'ferry.json'), JSON.stringify(mutate(file, at, by)) ?? '');
    await loadsOrRefuses(() => readCheckpointManifest(dir));
  }), { numRuns: RUNS, seed: 14 });
});

test(`weight shards: ${RUNS} cut, grown or overwritten shards load or are one FerryError`, async () => {
  const shard = shardName();
  const bytes = await readFile(path.join(checkpoint, shard));
  const damage = fc.oneof(
    fc.nat({ max: bytes.length }).map((n) => bytes.subarray(0, n)),
    fc.uint8Array({ minLength: 1, maxLength: 64 }).map((extra) => Buffer.concat([bytes, extra])),
    fc.record({ at: fc.nat({ max: bytes.length - 4 }), value: fc.constantFrom(0x7f800000, 0x7fc00000, 0xff800000, 0x00000001) }).map(({ at, value }) => {
      const copy = Buffer.from(bytes);
      copy.writeUInt32LE(value, at - (at % 4));
      return copy;
    }),
    fc.uint8Array({ minLength: 0, maxLength: 256 }),
  );
  await fc.assert(fc.asyncProperty(damage, async (content) => {
    const dir = await modelDirWith(shard, content);
    await loadsOrRefuses(() => readExportSource(dir).then((source) => source.model.dispose()));
  }), { numRuns: RUNS, seed: 14 });
});

test(`corpus files: ${RUNS} files of arbitrary bytes (and gzip names) read or are one FerryError`, async () => {
  const text = new TextEncoder().encode('to be, or not to be — naïve 😀\n');
  const content = fc.oneof(
    fc.uint8Array({ maxLength: 512 }),
    fc.record({ cut: fc.nat({ max: text.length }), tail: fc.uint8Array({ maxLength: 4 }) }).map(({ cut, tail }) => Buffer.concat([text.subarray(0, cut), tail])),
  );
  let n = 0;
  await fc.assert(fc.asyncProperty(content, fc.constantFrom('corpus.txt', 'corpus.txt.gz', 'corpus.gz'), async (bytes, name) => {
    const file = path.join(work, `${n++}-${name}`);
    await writeFile(file, bytes);
    try {
      await loadsOrRefuses(async () => {
        for await (const chunk of readCorpus(file)) assert.equal(typeof chunk, 'string');
      });
    } finally {
      await rm(file, { force: true });
    }
  }), { numRuns: RUNS, seed: 14 });
});

test('model.json layer graphs tfjs would wait on forever are refused at once: a layer without a name, a missing node, a cycle, a node with no inputs', async () => {
  const file = valid['model.json'] as { modelTopology: { config: { layers: { name: unknown; inbound_nodes: unknown[][][] }[] } } };
  const damaged = [
    mutate(file, ['modelTopology', 'config', 'layers', 4, 'name'], true),
    mutate(file, ['modelTopology', 'config', 'layers', 3, 'inbound_nodes', 0], undefined),
    mutate(file, ['modelTopology', 'config', 'layers', 1, 'inbound_nodes', 0, 0, 0], String(file.modelTopology.config.layers[3]!.name)),
    mutate(file, ['modelTopology', 'config', 'layers', 4, 'inbound_nodes', 0, 0], undefined),
  ];
  for (const json of damaged) {
    const dir = await modelDirWith('model.json', JSON.stringify(json));
    await assert.rejects(readExportSource(dir), (error: unknown) => error instanceof FerryError && /layer graph is damaged/.test(error.message));
  }
});
