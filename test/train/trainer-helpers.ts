import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ProgressReporter } from '../../src/train/progress.ts';
import type { TrainOptions } from '../../src/train/trainer.ts';

const created: string[] = [];
process.on('exit', () => {
  for (const dir of created) rmSync(dir, { recursive: true, force: true });
});

/** A fresh temp dir, removed when the test process exits. */
export function tempDir(prefix = 'ferry-train-'): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  created.push(dir);
  return dir;
}

/** A corpus a tiny model learns in a few dozen steps: one short line, repeated. */
export function writePatternCorpus(dir: string, repeats = 200, line = 'abcdefgh\n'): string {
  const path = join(dir, 'pattern.txt');
  writeFileSync(path, line.repeat(repeats));
  return path;
}

/** A reporter that keeps every line and every step's state, for assertions. */
export function collectingReporter(onStep?: (step: number) => void): ProgressReporter & { lines: string[]; steps: number[] } {
  const lines: string[] = [];
  const steps: number[] = [];
  return {
    lines,
    steps,
    begin() {},
    update({ step }) {
      steps.push(step);
      onStep?.(step);
    },
    message(line) {
      lines.push(line);
    },
    end() {},
  };
}

/** The tiny Transformer every trainer test uses (a few thousand parameters). */
export const TINY_TRANSFORMER = { nLayer: 1, nHead: 2, nEmbd: 16, blockSize: 16, dropout: 0 };

/** Options for a tiny Transformer run in `dir`: `hyperparameters` are the test's defaults, which `overrides` may change. */
export function tinyRunOptions(dir: string, corpus: string, hyperparameters: TrainOptions['hyperparameters'], overrides: Partial<TrainOptions> = {}): TrainOptions {
  return {
    corpus,
    out: join(dir, 'run'),
    arch: 'transformer',
    preset: 'tiny',
    model: TINY_TRANSFORMER,
    tokenizer: 'char',
    cacheDir: join(dir, 'cache'),
    reporter: collectingReporter(),
    ...overrides,
    hyperparameters: { ...hyperparameters, ...overrides.hyperparameters },
  };
}
