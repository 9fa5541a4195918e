// `kill -9` of `ferry train` at seeded random moments, one of them while a checkpoint is being
// written: each time `--resume` continues, and the run ends with exactly the losses of a run
// never interrupted. And `ferry export` killed mid-write leaves no package dir.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, watch } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { mulberry32 } from '../../src/random.ts';
import { findPackages } from '../../src/serve/node.ts';
import { tempDir, writePatternCorpus } from './trainer-helpers.ts';

const root = fileURLToPath(new URL('../..', import.meta.url));
const env = { ...process.env, FERRY_CACHE_DIR: tempDir('ferry-kill-cache-') };
const TINY = ['--arch', 'transformer', '--preset', 'tiny', '--layers', '1', '--embd', '16', '--heads', '2', '--block-size', '16'];
const QUICK = ['--batch-size', '4', '--lr', '0.01', '--warmup', '0', '--eval-iters', '2', '--log-interval', '1', '--eval-interval', '3', '--seed', '7'];
const STEPS = 24;

function ferry(args: string[]) {
  const result = spawnSync(process.execPath, ['bin/ferry.js', ...args], { cwd: root, env, encoding: 'utf8', timeout: 300_000 });
  assert.equal(result.status, 0, result.stderr);
}

/** The train loss of each step, the last one logged for it (a resumed run logs again from its checkpoint). */
function lossesOf(run: string): Map<number, number> {
  const losses = new Map<number, number>();
  for (const line of readFileSync(join(run, 'metrics.jsonl'), 'utf8').split('\n').filter(Boolean)) {
    const event = JSON.parse(line) as { type: string; step: number; loss?: number };
    if (event.type === 'train' && event.loss !== undefined) losses.set(event.step, event.loss);
  }
  return losses;
}

/**
 * Starts `ferry train` and kills it with SIGKILL once it logs step `killAtStep` or later, or, with
 * `midCheckpoint`, the moment a checkpoint's temp dir appears. The moment is a step, not a delay:
 * on a fast machine the whole run takes less than any delay worth drawing.
 */
function trainAndKill(args: string[], out: string, killAtStep: number, midCheckpoint: boolean): Promise<string> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['bin/ferry.js', 'train', ...args], { cwd: root, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    const kill = () => child.kill('SIGKILL');
    child.stdout.on('data', (d) => {
      output += d;
      if (midCheckpoint) return;
      const logged = [...output.matchAll(/^step (\d+)\//gm)].map((match) => Number(match[1]));
      if (logged.some((step) => step >= killAtStep)) kill();
    });
    child.stderr.on('data', (d) => (output += d));
    let watcher: ReturnType<typeof watch> | undefined;
    const poll = setInterval(() => {
      if (!midCheckpoint || !existsSync(out)) return;
      clearInterval(poll);
      watcher = watch(out, (_event, name) => {
        if (name?.startsWith('.') && name.includes('.tmp-')) kill();
      });
    }, 5);
    child.on('exit', (code, signal) => {
      clearInterval(poll);
      watcher?.close();
      resolve(`${code ?? signal}: ${output.slice(-300)}`);
    });
  });
}

test('kill -9 of ferry train at random moments (and mid-checkpoint) leaves a run that --resume finishes with the uninterrupted losses', async () => {
  const dir = tempDir('ferry-kill-');
  const corpus = writePatternCorpus(dir);
  const reference = join(dir, 'reference');
  ferry(['train', ...TINY, ...QUICK, '--steps', String(STEPS), '--corpus', corpus, '--out', reference]);
  const expected = lossesOf(reference);
  assert.equal(expected.size, STEPS);

  const out = join(dir, 'killed');
  const random = mulberry32(14);
  // Killed after the first checkpoint (step 3) and well before the end, so this one is always a kill.
  const killAt = () => 4 + Math.floor(random() * (STEPS / 2 - 4));
  const first = await trainAndKill([...TINY, ...QUICK, '--steps', String(STEPS), '--corpus', corpus, '--out', out], out, killAt(), false);
  assert.match(first, /^SIGKILL/, `killed: ${first}`);
  for (const midCheckpoint of [true, false]) {
    const killed = await trainAndKill(['--resume', '--out', out], out, killAt() + STEPS / 2 - 4, midCheckpoint);
    assert.ok(/^SIGKILL/.test(killed) || /^0:/.test(killed), `resumed run: ${killed}`);
  }
  ferry(['train', '--resume', '--out', out]);
  assert.deepEqual(lossesOf(out), expected);
  assert.ok(!readdirSync(out).some((name) => name.includes('.tmp-')), `no temp dir is left: ${readdirSync(out)}`);
});

test('ferry export killed mid-write leaves no package dir, and the next export writes a whole one', async () => {
  const dir = tempDir('ferry-kill-export-');
  const corpus = writePatternCorpus(dir);
  const run = join(dir, 'run');
  ferry(['train', ...TINY, ...QUICK, '--steps', '3', '--corpus', corpus, '--out', run]);
  const pkg = join(dir, 'models', 'tiny');
  const killed = await new Promise<string>((resolve) => {
    const child = spawn(process.execPath, ['bin/ferry.js', 'export', join(run, 'best'), '--out', pkg], { cwd: root, env, stdio: 'ignore' });
    const poll = setInterval(() => {
      const parent = join(dir, 'models');
      if (existsSync(parent) && readdirSync(parent).length > 0) {
        clearInterval(poll);
        child.kill('SIGKILL');
      }
    }, 2);
    child.on('exit', (code, signal) => {
      clearInterval(poll);
      resolve(String(code ?? signal));
    });
  });
  assert.equal(killed, 'SIGKILL', 'killed while it wrote');
  assert.equal(existsSync(pkg), false, 'no half-written package dir');
  await assert.rejects(findPackages([join(dir, 'models')]), /holds no ONNX package/, 'what the killed export left is not served');
  ferry(['export', join(run, 'best'), '--out', pkg]);
  assert.ok(existsSync(join(pkg, 'ferry.json')));
  assert.deepEqual(readdirSync(join(dir, 'models')), ['tiny'], 'the next export cleared what the killed one left');
});
