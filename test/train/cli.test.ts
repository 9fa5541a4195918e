import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { DEFAULT_HYPERPARAMETERS } from '../../src/train/trainer.ts';
import { tempDir, writePatternCorpus } from './trainer-helpers.ts';

const root = fileURLToPath(new URL('../..', import.meta.url));
const cacheDir = tempDir('ferry-cli-cache-');
const env = { ...process.env, FERRY_CACHE_DIR: cacheDir };

function ferry(args: string[]): { status: number | null; stdout: string; stderr: string } {
  const result = spawnSync(process.execPath, ['bin/ferry.js', ...args], { cwd: root, env, encoding: 'utf8', timeout: 120_000 });
  return { status: result.status, stdout: result.stdout, stderr: result.stderr };
}

function ferryAsync(args: string[]): Promise<{ status: number | null; stdout: string; stderr: string }> {
  return new Promise((resolveRun) => {
    const child = spawn(process.execPath, ['bin/ferry.js', ...args], { cwd: root, env });
    let [stdout, stderr] = ['', ''];
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.on('close', (status) => resolveRun({ status, stdout, stderr }));
  });
}

async function mapConcurrently<T, R>(items: readonly T[], limit: number, work: (item: T) => Promise<R>): Promise<R[]> {
  const results: R[] = new Array(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const index = next++;
      results[index] = await work(items[index]!);
    }
  };
  await Promise.all(Array.from({ length: limit }, worker));
  return results;
}

const TINY = ['--arch', 'transformer', '--preset', 'tiny', '--layers', '1', '--embd', '16', '--heads', '2', '--block-size', '16'];
const QUICK = ['--batch-size', '4', '--lr', '0.01', '--warmup', '0', '--eval-iters', '2', '--log-interval', '1'];

test('--help of train, sample and eval lists every option with its default', () => {
  const help = ferry(['train', '--help']);
  assert.equal(help.status, 0);
  for (const flag of [
    '--arch', '--corpus', '--out', '--preset', '--tokenizer', '--vocab-size', '--layers', '--hidden', '--embd', '--heads',
    '--block-size', '--dropout', '--positional', '--tie-weights', '--steps', '--batch-size', '--lr', '--min-lr', '--warmup',
    '--decay-steps', '--weight-decay', '--beta1', '--beta2', '--grad-clip', '--eval-interval', '--eval-iters', '--patience',
    '--seed', '--val-fraction', '--log-interval', '--backend', '--resume', '--cache-dir', '--init-embeddings', '--freeze-embeddings',
  ]) {
    assert.match(help.stdout, new RegExp(`\\s${flag}[ ,\\n]`), `train --help mentions ${flag}`);
  }
  // The defaults shown are the trainer's.
  const shown = (flag: string) => {
    const entry = help.stdout.slice(help.stdout.indexOf(`  ${flag} <`)).split(/\n {2}-/)[0]!.replace(/\s+/g, ' ');
    return Number(/\(default: ([\d.e-]+)\)/.exec(entry)?.[1]);
  };
  assert.equal(shown('--steps'), DEFAULT_HYPERPARAMETERS.steps);
  assert.equal(shown('--batch-size'), DEFAULT_HYPERPARAMETERS.batchSize);
  assert.equal(shown('--lr'), DEFAULT_HYPERPARAMETERS.lr);
  assert.equal(shown('--warmup'), DEFAULT_HYPERPARAMETERS.warmupSteps);
  assert.equal(shown('--weight-decay'), DEFAULT_HYPERPARAMETERS.weightDecay);
  assert.equal(shown('--beta2'), DEFAULT_HYPERPARAMETERS.beta2);
  assert.equal(shown('--grad-clip'), DEFAULT_HYPERPARAMETERS.gradClip);
  assert.equal(shown('--eval-interval'), DEFAULT_HYPERPARAMETERS.evalInterval);
  assert.equal(shown('--eval-iters'), DEFAULT_HYPERPARAMETERS.evalIters);
  assert.equal(shown('--seed'), DEFAULT_HYPERPARAMETERS.seed);
  assert.equal(shown('--val-fraction'), DEFAULT_HYPERPARAMETERS.valFraction);
  assert.match(help.stdout, /nanogpt-cpu/);
  assert.match(help.stdout, /130 or 143/);
  const sample = ferry(['sample', '--help']);
  for (const flag of ['--prompt', '--max-tokens', '--temperature', '--top-k', '--seed', '--greedy', '--backend']) assert.match(sample.stdout, new RegExp(flag));
  assert.match(sample.stdout, /--temperature <x>[\s\S]*default: 0\.8/);
  const evaluate = ferry(['eval', '--help']);
  for (const flag of ['--corpus', '--batch-size', '--json', '--backend']) assert.match(evaluate.stdout, new RegExp(flag));
});

test('ferry --version and -V print the version; ferry alone prints help and exits 0', () => {
  const { version } = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { version: string };
  for (const flag of ['--version', '-V']) assert.deepEqual(ferry([flag]).stdout, `${version}\n`);
  const alone = ferry([]);
  assert.equal(alone.status, 0);
  assert.match(alone.stdout, /^Usage: ferry /);
  assert.match(alone.stdout, /train \[options\]/);
});

test('sample and eval name their own --help, and every bad flag with its value', () => {
  const sample = ferry(['sample', 'runs/none', '--max-tokens', '0', '--temperature', '-1']);
  assert.equal(sample.status, 1);
  assert.match(sample.stderr, /2 options are invalid:\n {2}- --max-tokens must be a whole number above 0, got "0"\n {2}- --temperature must be a number >= 0, got "-1"/);
  assert.match(sample.stderr, /Run `ferry sample --help`/);
  const evaluate = ferry(['eval', 'runs/none', '--corpus', 'x.txt', '--batch-size', '0']);
  assert.match(evaluate.stderr, /--batch-size must be a whole number above 0, got "0"\.\n {2}Run `ferry eval --help`/);
});

test('bad input: one clear message, a non-zero exit, and no run dir left behind', async () => {
  const dir = tempDir('ferry-cli-bad-');
  const corpus = writePatternCorpus(dir);
  const empty = join(dir, 'empty.txt');
  writeFileSync(empty, '');
  const invalid = join(dir, 'latin1.txt');
  writeFileSync(invalid, Buffer.from([0x68, 0x65, 0x6c, 0x6c, 0x6f, 0xe9, 0x21])); // "hello" then a Latin-1 é
  const binary = join(dir, 'program.o');
  writeFileSync(binary, Buffer.from([0x7f, 0x45, 0x4c, 0x46, 0x02, 0x01, 0x01, 0x00, 0x00, 0x00, 0xc3, 0x28])); // an ELF header
  const short = join(dir, 'short.txt');
  writeFileSync(short, 'abcdefghij');
  const loop = join(dir, 'loop.txt');
  symlinkSync(loop, loop); // unreadable even for root: resolving it loops
  const foreign = join(dir, 'foreign');
  mkdirSync(foreign);
  writeFileSync(join(foreign, 'notes.txt'), 'mine');
  const narrowVectors = join(dir, 'vectors8.txt');
  writeFileSync(narrowVectors, 'a 1 2 3 4 5 6 7 8\n');
  const badVectors = join(dir, 'vectors-bad.txt');
  writeFileSync(badVectors, `a ${'1 '.repeat(16)}\nb x${' 1'.repeat(15)}\n`);

  const cases: { name: string; args: string[]; message: RegExp; out?: string }[] = [
    { name: 'missing corpus', args: ['--corpus', join(dir, 'nope.txt')], message: /the corpus .*nope\.txt does not exist/ },
    { name: 'empty corpus', args: ['--corpus', empty], message: /the corpus .*empty\.txt is empty/ },
    { name: 'unreadable corpus', args: ['--corpus', loop], message: /cannot read the corpus .*loop\.txt/ },
    { name: 'invalid UTF-8', args: ['--corpus', invalid], message: /latin1\.txt is not valid UTF-8 at byte offset 5/ },
    { name: 'binary file', args: ['--corpus', binary], message: /program\.o looks like a binary file, not text \(it holds NUL bytes\)/ },
    { name: 'corpus shorter than a block', args: ['--corpus', short], message: /fewer than one block of 16 \+ 1/ },
    { name: 'heads not dividing the width', args: ['--corpus', corpus, '--heads', '3'], message: /--heads 3 must divide --embd 16 \(for example --heads 4, or --embd 15\)/ },
    { name: 'LSTM flag on a Transformer', args: ['--corpus', corpus, '--hidden', '64'], message: /--hidden applies only to lstm models, not transformer/ },
    { name: 'unknown arch', args: ['--corpus', corpus, '--arch', 'gru'], message: /Unknown architecture "gru"/ },
    { name: 'unknown preset', args: ['--corpus', corpus, '--preset', 'huge'], message: /Unknown preset "huge"/ },
    { name: 'unknown tokenizer', args: ['--corpus', corpus, '--tokenizer', 'sentencepiece'], message: /Unknown tokenizer "sentencepiece"/ },
    { name: 'unknown backend', args: ['--corpus', corpus, '--backend', 'tpu'], message: /Unknown backend "tpu"/ },
    { name: 'NaN steps', args: ['--corpus', corpus, '--steps', 'many'], message: /--steps must be a whole number above 0, got "many"/ },
    { name: 'negative lr', args: ['--corpus', corpus, '--lr', '-0.1'], message: /--lr must be a number above 0, got "-0\.1"/ },
    { name: 'fractional batch size', args: ['--corpus', corpus, '--batch-size', '2.5'], message: /--batch-size must be a whole number above 0/ },
    { name: 'dropout of 1', args: ['--corpus', corpus, '--dropout', '1'], message: /--dropout must be a number in \[0, 1\), got "1"/ },
    { name: 'min-lr above lr', args: ['--corpus', corpus, '--min-lr', '0.5'], message: /--min-lr 0\.5 must lie between 0 and --lr 0\.01/ },
    { name: 'no corpus', args: [], message: /No corpus given/ },
    { name: 'out is a foreign dir', args: ['--corpus', corpus], out: foreign, message: /foreign exists and is not a ferry run \(it holds notes\.txt\)/ },
    { name: 'vectors of another width', args: ['--corpus', corpus, '--init-embeddings', narrowVectors], message: /--init-embeddings .*vectors8\.txt holds 8-dimensional vectors, but the model's embedding width is 16\./ },
    { name: 'bad vectors file', args: ['--corpus', corpus, '--init-embeddings', badVectors], message: /--init-embeddings .*vectors-bad\.txt, line 2: value 1 of "b" is "x", not a number/ },
    { name: 'frozen random embeddings', args: ['--corpus', corpus, '--freeze-embeddings'], message: /--freeze-embeddings needs --init-embeddings FILE/ },
    { name: 'resume without a run', args: ['--corpus', corpus, '--resume'], message: /Cannot resume: .* does not exist/ },
  ];
  const target = ({ name, out }: (typeof cases)[number]) => out ?? join(dir, `run-${name.replace(/\W+/g, '-')}`);
  // Three at a time: each is a separate `ferry` process that spends most of its time starting.
  const results = await mapConcurrently(cases, 3, (entry) => ferryAsync(['train', ...TINY, ...QUICK, '--steps', '4', '--out', target(entry), ...entry.args]));
  for (const [index, { name, message, out }] of cases.entries()) {
    const result = results[index]!;
    assert.notEqual(result.status, 0, `${name}: exit status`);
    assert.match(result.stderr, /^ferry: /m, `${name}: stderr ${result.stderr}`);
    assert.match(result.stderr, message, `${name}: stderr ${result.stderr}`);
    assert.doesNotMatch(result.stderr, /\n\s+at /, `${name}: no stack trace`);
    if (out === undefined) assert.ok(!existsSync(target(cases[index]!)), `${name}: no run dir`);
    else assert.deepEqual(readdirSync(out), ['notes.txt']);
  }
  assert.deepEqual(readdirSync(dir).filter((entry) => entry.startsWith('run-') || entry.startsWith('.')), []);
});

test('every invalid flag is reported at once, in flag names; a short run fits the default warmup and evaluation interval to itself', () => {
  const dir = tempDir('ferry-cli-flags-');
  const corpus = writePatternCorpus(dir);
  const out = join(dir, 'run');
  const bad = ferry(['train', '--arch', 'transformer', '--preset', 'tiny', '--corpus', corpus, '--out', out, '--heads', '3', '--embd', '128',
    '--steps', '0', '--lr', 'fast', '--warmup', '-1', '--hidden', '8', '--tokenizer', 'sentencepiece']);
  assert.equal(bad.status, 1);
  assert.match(bad.stderr, /^ferry: 6 options are invalid:$/m);
  for (const problem of [
    /- --steps must be a whole number above 0, got "0"/, /- --lr must be a number above 0, got "fast"/,
    /- --warmup must be a whole number >= 0, got "-1"/, /- --hidden applies only to lstm models, not transformer/,
    /- Unknown tokenizer "sentencepiece"/, /- --heads 3 must divide --embd 128 \(for example --heads 4, or --embd 129\)/,
  ]) assert.match(bad.stderr, problem);
  assert.match(bad.stderr, /Run `ferry train --help`/);
  assert.doesNotMatch(bad.stderr, /nEmbd|nHead|warmupSteps/);
  assert.ok(!existsSync(out));

  // Given explicitly, a warmup as long as the run is refused rather than changed.
  const explicit = ferry(['train', ...TINY, '--corpus', corpus, '--out', out, '--steps', '10', '--warmup', '10']);
  assert.equal(explicit.status, 1);
  assert.match(explicit.stderr, /--warmup 10 must be below --steps 10: lower --warmup or raise --steps/);

  const short = ferry(['train', ...TINY, '--corpus', corpus, '--out', out, '--steps', '10', '--batch-size', '2', '--eval-iters', '1']);
  assert.equal(short.status, 0, short.stderr);
  assert.match(short.stdout, /note: warming up over 1 step, as --steps 10 is shorter than the default --warmup 100 \(pass --warmup to choose\)/);
  assert.match(short.stdout, /note: evaluating every 2 steps, so that --steps 10 gets 5 evaluations/);
  const evals = readFileSync(join(out, 'metrics.jsonl'), 'utf8').split('\n').filter((line) => line.includes('"eval"'));
  assert.equal(evals.length, 5);
  const state = JSON.parse(readFileSync(join(out, 'last', 'state.json'), 'utf8')) as { hyperparameters: { warmupSteps: number; evalInterval: number } };
  assert.deepEqual([state.hyperparameters.warmupSteps, state.hyperparameters.evalInterval], [1, 2]);
  // The chart names the run and model, prints the final losses, and shows every evaluation.
  const svg = readFileSync(join(out, 'loss.svg'), 'utf8');
  assert.match(svg, />run: transformer, [\d,]+ parameters, char tokenizer</);
  assert.match(svg, />step 10: train loss \d\.\d{4}, val loss \d\.\d{4}/);
  assert.equal([...svg.matchAll(/<circle /g)].length, 5);
});

test('an existing run is refused without --resume, and cannot be resumed as another architecture', () => {
  const dir = tempDir('ferry-cli-resume-');
  const corpus = writePatternCorpus(dir);
  const out = join(dir, 'run');
  const first = ferry(['train', ...TINY, ...QUICK, '--steps', '2', '--eval-interval', '2', '--corpus', corpus, '--out', out]);
  assert.equal(first.status, 0, first.stderr);
  const before = readFileSync(join(out, 'metrics.jsonl'), 'utf8');
  const again = ferry(['train', ...TINY, ...QUICK, '--steps', '2', '--corpus', corpus, '--out', out]);
  assert.equal(again.status, 1);
  assert.match(again.stderr, /already holds a ferry run[\s\S]*--resume/);
  const lstm = ferry(['train', '--arch', 'lstm', '--preset', 'tiny', '--resume', '--out', out]);
  assert.equal(lstm.status, 1);
  assert.match(lstm.stderr, /Cannot resume a transformer checkpoint as --arch lstm/);
  const wider = ferry(['train', '--resume', '--out', out, '--embd', '32']);
  assert.equal(wider.status, 1);
  assert.match(wider.stderr, /different model: nEmbd 16 -> 32/);
  assert.equal(readFileSync(join(out, 'metrics.jsonl'), 'utf8'), before);
  assert.equal(JSON.parse(readFileSync(join(out, 'last', 'ferry.json'), 'utf8')).training.step, 2);
});

/** Starts `ferry train`, sends `signal` after three step lines, and resolves with how it ended. */
function interrupt(args: string[], signal: NodeJS.Signals): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolveRun, reject) => {
    const child = spawn(process.execPath, ['bin/ferry.js', 'train', ...args], { cwd: root, env });
    let stdout = '';
    let stderr = '';
    let sent = false;
    child.stdout.on('data', (chunk: Buffer) => {
      stdout += chunk.toString();
      // Three step lines from this process: it is well inside the training loop.
      if (!sent && (stdout.match(/^step \d+\/\d+ \| loss/gm) ?? []).length >= 3) {
        sent = true;
        child.kill(signal);
      }
    });
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`ferry train did not stop on ${signal}: ${stdout}\n${stderr}`));
    }, 90_000);
    child.on('exit', (code) => {
      clearTimeout(timer);
      resolveRun({ code, stdout, stderr });
    });
  });
}

test('SIGINT and SIGTERM save last/ and exit with 130 and 143; the run resumes from there', async () => {
  const dir = tempDir('ferry-cli-signal-');
  const corpus = writePatternCorpus(dir);
  const out = join(dir, 'run');
  const args = [...TINY, ...QUICK, '--steps', '100000', '--eval-interval', '100000', '--corpus', corpus, '--out', out];
  const stopped = await interrupt(args, 'SIGINT');
  assert.equal(stopped.code, 130, stopped.stderr);
  assert.match(stopped.stderr, /SIGINT: saving .*last and stopping/);
  assert.match(stopped.stdout, /interrupted at step \d+/);
  const state = JSON.parse(readFileSync(join(out, 'last', 'state.json'), 'utf8'));
  assert.ok(state.step >= 3, `saved at step ${state.step}`);
  assert.equal(JSON.parse(readFileSync(join(out, 'last', 'ferry.json'), 'utf8')).training.step, state.step);
  assert.deepEqual(readdirSync(out).sort(), ['last', 'loss.svg', 'metrics.jsonl']);

  const terminated = await interrupt(['--resume', '--out', out, '--log-interval', '1'], 'SIGTERM');
  assert.equal(terminated.code, 143, terminated.stderr);
  assert.match(terminated.stdout, new RegExp(`resuming .* at step ${state.step}:`));
  const later = JSON.parse(readFileSync(join(out, 'last', 'state.json'), 'utf8'));
  assert.ok(later.step > state.step);

  const finish = ferry(['train', '--resume', '--out', out, '--steps', String(later.step + 2)]);
  assert.equal(finish.status, 0, finish.stderr);
  assert.match(finish.stdout, new RegExp(`done at step ${later.step + 2}`));
  assert.deepEqual(readdirSync(out).sort(), ['best', 'last', 'loss.svg', 'metrics.jsonl']);
});
