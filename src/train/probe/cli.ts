/**
 * `ferry probe`: how far back each architecture uses its context, on synthetic tasks (run.ts).
 * Only the flags are checked here at startup; tfjs and the trainer load inside the action.
 */
import { Option, type Command } from 'commander';
import { InvalidFlag, invalidFlags, invalidOptions, numericOption, POSITIVE_INT, POSITIVE_NUMBER, NON_NEGATIVE_INT, withoutInvalidFlags } from '../../cli-flags.ts';
import { ARCHS, type Arch } from '../models/config.ts';
import { MIN_DISTANCE, PROBE_TASKS, type ProbeTask } from './tasks.ts';

/** The default grid: measured to finish in under 15 minutes on 2 shared cores (README, "Long range: ferry probe"). */
export const PROBE_DEFAULTS = {
  tasks: ['recall', 'brackets'] as ProbeTask[],
  archs: ['lstm', 'transformer'] as Arch[],
  distances: [8, 16, 32, 64, 128, 256, 512],
  steps: 1000,
  window: 128,
  episodes: 200,
  batchSize: 16,
  lr: 3e-3,
  seed: 1,
};

/** A comma-separated list of names out of `allowed`, or an InvalidFlag naming the unknown ones. */
function nameList<T extends string>(flag: string, allowed: readonly T[]) {
  return (value: string): T[] => {
    const names = value.split(',').map((name) => name.trim()).filter((name) => name !== '');
    const unknown = names.filter((name) => !(allowed as readonly string[]).includes(name));
    if (names.length === 0 || unknown.length > 0) {
      const what = names.length === 0 ? 'nothing' : unknown.map((name) => `"${name}"`).join(', ');
      return new InvalidFlag(`${flag} takes a comma-separated list of ${allowed.join(', ')}, got ${what}`) as unknown as T[];
    }
    return [...new Set(names)] as T[];
  };
}

/** Comma-separated whole distances of at least 1, sorted and without repeats (the tasks' own minimums are checked with them). */
function distanceList(value: string): number[] {
  const parts = value.split(',').map((part) => part.trim()).filter((part) => part !== '');
  const bad = parts.filter((part) => !/^\d+$/.test(part) || Number(part) < 1);
  if (parts.length === 0 || bad.length > 0) {
    return new InvalidFlag(`--distances takes comma-separated whole numbers above 0, got ${parts.length === 0 ? 'nothing' : bad.map((part) => `"${part}"`).join(', ')}`) as unknown as number[];
  }
  return [...new Set(parts.map(Number))].sort((a, b) => a - b);
}

export function registerProbe(program: Command): void {
  const d = PROBE_DEFAULTS;
  program
    .command('probe')
    .description(
      'Measure how far back each architecture uses its context: for each synthetic task, train an LSTM and a Transformer briefly ' +
        'on generated episodes whose answer depends on a token exactly d tokens earlier (recall: a key\'s value, stored d tokens back; ' +
        'brackets: the closer of the bracket opened d tokens back), then score each model\'s accuracy at the answers alone ' +
        '(teacher-forced) at every distance of the grid. Prints a table; writes OUT/probe.jsonl and OUT/probe.svg. ' +
        'The Transformer\'s context is --window, so it is not scored past it; the LSTM is scored at every distance. ' +
        'The default grid takes about 5 minutes on 2 idle cores (about 10 when they are busy).',
    )
    .addOption(new Option('--tasks <list>', `comma-separated tasks: ${PROBE_TASKS.join(', ')}`).argParser(nameList('--tasks', PROBE_TASKS)).default(d.tasks, d.tasks.join(',')))
    .addOption(new Option('--archs <list>', `comma-separated architectures: ${ARCHS.join(', ')}`).argParser(nameList('--archs', ARCHS)).default(d.archs, d.archs.join(',')))
    .addOption(new Option('--distances <list>', `comma-separated dependency distances to score, in tokens`)
      .argParser(distanceList).default(d.distances, d.distances.join(',')))
    .addOption(numericOption('--steps <n>', 'training steps of each model', POSITIVE_INT, d.steps))
    .addOption(numericOption('--window <n>', 'training window of both models, and the Transformer\'s context; training distances reach window - 8', POSITIVE_INT, d.window))
    .addOption(numericOption('--episodes <n>', 'fresh episodes scored per distance', POSITIVE_INT, d.episodes))
    .addOption(numericOption('--batch-size <n>', 'training windows per step', POSITIVE_INT, d.batchSize))
    .addOption(numericOption('--lr <x>', 'peak learning rate (10% warmup, cosine decay)', POSITIVE_NUMBER, d.lr))
    .addOption(numericOption('--seed <n>', 'seed of the episodes, the initial weights and the batches: the same seed gives the same numbers on one backend', NON_NEGATIVE_INT, d.seed))
    .addOption(new Option('--backend <name>', 'tfjs backend: auto | tfjs-node-gpu | tfjs-node | webgpu | wasm | cpu').default('auto'))
    .option('--out <dir>', 'where probe.jsonl and probe.svg go', 'probe')
    .option('--json', 'print the report as one JSON object instead of the table')
    .action(async (flags: Record<string, unknown>) => {
      const problems = [...invalidFlags(flags), ...probeProblems(withoutInvalidFlags(flags))];
      if (problems.length > 0) throw invalidOptions(problems, 'probe');
      const { runProbe } = await import('./run.ts');
      const { formatProbeTable, writeProbeReport } = await import('./report.ts');
      const report = await runProbe({
        tasks: flags.tasks as ProbeTask[], archs: flags.archs as Arch[], distances: flags.distances as number[],
        steps: flags.steps as number, window: flags.window as number, episodes: flags.episodes as number,
        batchSize: flags.batchSize as number, lr: flags.lr as number, seed: flags.seed as number, backend: flags.backend as string,
        log: (line) => process.stderr.write(`${line}\n`),
      });
      const written = await writeProbeReport(flags.out as string, report);
      if (flags.json) console.log(JSON.stringify({ ...report, files: written }));
      else process.stdout.write(`${formatProbeTable(report)}wrote ${written.join(', ')}\n`);
    });
}

/** The checks between flags (each flag's own were done by its parser): distances and the window against the tasks. */
export function probeProblems(flags: Record<string, unknown>): string[] {
  const problems: string[] = [];
  const tasks = (flags.tasks as ProbeTask[] | undefined) ?? [];
  const distances = flags.distances as number[] | undefined;
  const window = flags.window as number | undefined;
  for (const task of tasks) {
    const short = distances?.filter((distance) => distance < MIN_DISTANCE[task]) ?? [];
    if (short.length > 0) problems.push(`--distances ${short.join(',')}: shorter than ${task}'s shortest distance, ${MIN_DISTANCE[task]}`);
    // Training distances run from the task's shortest to window - 8 (run.ts), which must not be empty.
    if (window !== undefined && window - 8 < MIN_DISTANCE[task]) problems.push(`--window ${window} leaves no room for ${task} episodes: pass --window ${MIN_DISTANCE[task] + 8} or more`);
  }
  return problems;
}
