import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { mulberry32 } from '../../src/random.ts';
import { probeProblems } from '../../src/train/probe/cli.ts';
import { scoringSet, trainingRange } from '../../src/train/probe/run.ts';
import { countCorrect } from '../../src/train/probe/score.ts';
import { ANSWER_ALPHABETS, generateCorpus, generateEpisode, logUniformDistance, TASK_ALPHABETS } from '../../src/train/probe/tasks.ts';
import { tempDir } from './trainer-helpers.ts';

const root = fileURLToPath(new URL('../..', import.meta.url));

function ferry(args: string[]): { status: number | null; stdout: string; stderr: string } {
  const result = spawnSync(process.execPath, ['bin/ferry.js', ...args], {
    cwd: root, env: { ...process.env, FERRY_CACHE_DIR: tempDir('ferry-probe-cache-') }, encoding: 'utf8', timeout: 180_000,
  });
  return { status: result.status, stdout: result.stdout, stderr: result.stderr };
}

/** Brackets still open after `text` (types as indexes into ([{<), checking that every closer matches. */
function openBrackets(text: string): number[] {
  const stack: number[] = [];
  for (const char of text) {
    if ('([{<'.includes(char)) stack.push('([{<'.indexOf(char));
    else if (')]}>'.includes(char)) assert.equal(stack.pop(), ')]}>'.indexOf(char), `a closer that does not match in ${JSON.stringify(text)}`);
  }
  return stack;
}

/** Key and value of a recall fact token (U+00C0 + 10 key + value). */
function factOf(char: string): { key: string; value: string } | undefined {
  const code = char.charCodeAt(0) - 0xc0;
  return code >= 0 && code < 80 ? { key: 'abcdefgh'[Math.floor(code / 10)]!, value: String(code % 10) } : undefined;
}

test('recall episodes put the answer exactly d tokens after the fact it reads, the asked key\'s only mention', () => {
  const random = mulberry32(7);
  for (const distance of [2, 3, 8, 13, 64, 200]) {
    for (let i = 0; i < 50; i += 1) {
      const { text, answer, source } = generateEpisode('recall', distance, random);
      assert.equal(answer - source, distance);
      assert.equal(text.length, answer + 2);
      assert.equal(text.at(-1), '\n');
      const stored = factOf(text[source]!);
      assert.ok(stored, 'the source is a fact');
      assert.equal(text[answer - 1], stored.key, 'the question asks the fact\'s key');
      assert.equal(text[answer], stored.value, 'the answer is the fact\'s value');
      // The key is nowhere else, as a fact or asked: its value can only come from d back.
      const mentions = [...text].flatMap((char, index) => (char === stored.key || factOf(char)?.key === stored.key ? [index] : []));
      assert.deepEqual(mentions, [source, answer - 1]);
      // One table per episode: every question is answered with its key's value, asked only after its fact.
      const table = new Map<string, string>();
      for (let k = 0; k < text.length - 1; k += 1) {
        const f = factOf(text[k]!);
        if (f) {
          assert.equal(table.get(f.key) ?? f.value, f.value);
          table.set(f.key, f.value);
        } else {
          assert.match(text[k]!, /[a-h]/);
          assert.equal(text[k + 1], table.get(text[k]!), `question ${text[k]} at ${k}`);
          k += 1;
        }
      }
    }
  }
});

test('bracket episodes close, exactly d tokens later, the bracket they open, over a balanced filler', () => {
  const random = mulberry32(8);
  for (const distance of [2, 3, 8, 31, 128]) {
    for (let i = 0; i < 50; i += 1) {
      const { text, answer, source } = generateEpisode('brackets', distance, random);
      assert.equal(source, 0);
      assert.equal(answer, distance);
      assert.equal(text.length, distance + 2);
      assert.equal(text.at(-1), '\n');
      // Before the answer exactly the first bracket is open; the answer closes it.
      assert.deepEqual(openBrackets(text.slice(0, answer)), ['([{<'.indexOf(text[0]!)]);
      assert.equal(')]}>'.indexOf(text[answer]!), '([{<'.indexOf(text[0]!));
      assert.deepEqual(openBrackets(text), []);
    }
  }
});

test('the generators are seeded: the same seed gives the same text, another seed another', () => {
  for (const task of ['recall', 'brackets'] as const) {
    const range = trainingRange(task, 64);
    const corpus = generateCorpus(task, range, 5000, 3);
    assert.equal(generateCorpus(task, range, 5000, 3), corpus);
    assert.notEqual(generateCorpus(task, range, 5000, 4), corpus);
    assert.ok(corpus.length >= 5000);
    // The alphabet line comes first, so that a char tokenizer of any draw knows every character.
    assert.ok(corpus.startsWith(`${TASK_ALPHABETS[task].replace('\n', '')}\n`));
    assert.ok([...corpus].every((char) => TASK_ALPHABETS[task].includes(char)));
  }
  const random = mulberry32(1);
  const draws = Array.from({ length: 2000 }, () => logUniformDistance([8, 120], random));
  assert.ok(draws.every((d) => Number.isInteger(d) && d >= 8 && d <= 120));
  // Log-uniform: as many draws in [8, 31) as in [31, 121) (each about half), far from uniform's 20%.
  const short = draws.filter((d) => d < 31).length / draws.length;
  assert.ok(short > 0.4 && short < 0.6, `share below 31: ${short}`);
});

test('scoring sets end just before the answer, with the dependency exactly d back from it', () => {
  for (const task of ['recall', 'brackets'] as const) {
    const distance = 24;
    const set = scoringSet(task, distance, 40, trainingRange(task, 64), mulberry32(5));
    const length = set.inputs[0]!.length;
    assert.ok(set.inputs.every((input) => input.length === length));
    set.inputs.forEach((input, row) => {
      const source = input[length - distance]!;
      if (task === 'recall') assert.equal(set.answers[row], factOf(source)?.value);
      else assert.equal(')]}>'.indexOf(set.answers[row]!), '([{<'.indexOf(source));
      assert.ok(ANSWER_ALPHABETS[task].includes(set.answers[row]!));
    });
  }
});

test('scoring counts the answer positions alone, choosing among the answer tokens', () => {
  // 2 rows x 3 positions x 5 tokens; answers at (row 0, position 1) and (row 1, position 2), candidates 1 and 2.
  const logits = new Float32Array(2 * 3 * 5);
  const set = (row: number, position: number, values: number[]) => logits.set(values, (row * 3 + position) * 5);
  set(0, 0, [0, 0, 99, 0, 0]); // not an answer position: ignored however confident
  set(0, 1, [0, 1, 3, 0, 50]); // token 4 is highest but no candidate: the prediction is 2, right
  set(0, 2, [0, 99, 0, 0, 0]);
  set(1, 0, [0, 0, 99, 0, 0]);
  set(1, 2, [0, 5, 4, 0, 0]); // predicts 1, the target is 2: wrong
  const shape = { rows: 2, length: 3, vocab: 5 };
  const answers = [{ row: 0, position: 1, target: 2 }, { row: 1, position: 2, target: 2 }];
  assert.equal(countCorrect(logits, shape, answers, [1, 2]), 1);
  assert.equal(countCorrect(logits, shape, [{ row: 1, position: 2, target: 1 }], [1, 2]), 1);
  assert.equal(countCorrect(logits, shape, [], [1, 2]), 0);
  assert.throws(() => countCorrect(logits.subarray(1), shape, answers, [1, 2]), RangeError);
});

test('ferry probe on a tiny grid prints the table and writes probe.jsonl and probe.svg', () => {
  const out = join(tempDir('ferry-probe-'), 'report');
  const result = ferry([
    'probe', '--tasks', 'recall,brackets', '--distances', '8,24,64', '--steps', '3', '--window', '32', '--episodes', '6',
    '--batch-size', '4', '--backend', 'cpu', '--out', out,
  ]);
  assert.equal(result.status, 0, result.stderr);
  const table = result.stdout.split('\n');
  assert.match(table[1]!, /^distance\s+recall\/lstm\s+recall\/transformer\s+brackets\/lstm\s+brackets\/transformer$/);
  assert.match(table[2]!, /^\s+8(\s+\d+\.\d%){4}$/);
  // 64 tokens back lies past the Transformer's context of 32 and past the LSTM's training window.
  assert.match(table[4]!, /^\s+64\s+\d+\.\d% \*\s+past context 32\s+\d+\.\d% \*\s+past context 32$/);
  assert.match(result.stdout, /wrote .*probe\.jsonl, .*probe\.svg/);

  const lines = readFileSync(join(out, 'probe.jsonl'), 'utf8').trim().split('\n').map((line) => JSON.parse(line) as Record<string, unknown>);
  assert.equal(lines[0]!.type, 'settings');
  assert.equal(lines.filter((line) => line.type === 'run').length, 4);
  const scores = lines.filter((line) => line.type === 'score');
  assert.equal(scores.length, 2 * 2 * 3);
  for (const score of scores) {
    assert.equal(score.episodes, 6);
    if (score.status === 'beyond_context') {
      assert.equal(score.arch, 'transformer');
      assert.equal(score.accuracy, null);
    } else {
      assert.equal(score.accuracy, (score.correct as number) / 6);
    }
  }
  assert.deepEqual(scores.filter((s) => s.status === 'beyond_context').map((s) => `${s.task} ${s.distance}`), ['recall 64', 'brackets 64']);
  const svg = readFileSync(join(out, 'probe.svg'), 'utf8');
  assert.match(svg, /^<svg /);
  for (const label of ['recall/lstm', 'recall/transformer', 'brackets/lstm', 'brackets/transformer', 'chance (recall)']) assert.ok(svg.includes(label), label);
});

test('ferry probe names every bad flag at once and starts nothing', () => {
  const out = join(tempDir('ferry-probe-'), 'never');
  const result = ferry(['probe', '--tasks', 'recall,copy', '--archs', 'gru', '--distances', '8,x', '--steps', '-1', '--lr', '0', '--out', out]);
  assert.equal(result.status, 1);
  assert.match(result.stderr, /5 options are invalid/);
  for (const flag of ['--tasks', '--archs', '--distances', '--steps', '--lr']) assert.ok(result.stderr.includes(`- ${flag}`), flag);
  assert.ok(result.stderr.includes('"copy"') && result.stderr.includes('"gru"') && result.stderr.includes('"x"'));
  assert.equal(result.stdout, '');

  assert.deepEqual(probeProblems({ tasks: ['recall', 'brackets'], distances: [1, 7, 8], window: 12 }), [
    '--distances 1: shorter than recall\'s shortest distance, 2',
    '--distances 1: shorter than brackets\'s shortest distance, 2',
  ]);
  assert.deepEqual(probeProblems({ tasks: ['brackets'], distances: [3, 8], window: 12 }), []);
  assert.deepEqual(probeProblems({ tasks: ['brackets'], distances: [8], window: 9 }), ['--window 9 leaves no room for brackets episodes: pass --window 10 or more']);
});

test('ferry probe --help lists every option with its default', () => {
  const help = ferry(['probe', '--help']);
  assert.equal(help.status, 0);
  const text = help.stdout.replace(/\s+/g, ' ');
  for (const flag of ['--tasks', '--archs', '--distances', '--steps', '--window', '--episodes', '--batch-size', '--lr', '--seed', '--backend', '--out', '--json']) {
    assert.ok(text.includes(` ${flag} `), flag);
  }
  for (const value of ['recall,brackets', 'lstm,transformer', '8,16,32,64,128,256,512', '(default: 1000)', '(default: 128)', '(default: 200)', '(default: "probe")']) {
    assert.ok(text.includes(value), value);
  }
  assert.ok(text.includes('probe.jsonl') && text.includes('probe.svg'));
});
