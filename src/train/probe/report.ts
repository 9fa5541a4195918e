/**
 * The report of `ferry probe`: a table of accuracy by distance (one column per task and arch),
 * DIR/probe.jsonl (the settings, one line per training run, one per score) and DIR/probe.svg
 * (accuracy against log2 of the distance, one line per task and arch, chance as grey lines).
 */
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { FerryError } from '../../errors.ts';
import { renderLineChart, type ChartSeries } from '../chart.ts';
import { writeFileAtomic } from '../tfjs-io.ts';
import type { ProbeReport, ProbeScore } from './run.ts';

const COLOURS: Record<string, string> = {
  'recall/lstm': '#1f77b4', 'recall/transformer': '#ff7f0e', 'brackets/lstm': '#2ca02c', 'brackets/transformer': '#d62728',
};

function columns(report: ProbeReport): string[] {
  return report.settings.tasks.flatMap((task) => report.settings.archs.map((arch) => `${task}/${arch}`));
}

function cell(score: ProbeScore | undefined, window: number): string {
  if (score === undefined) return '-';
  if (score.status === 'beyond_context') return `past context ${window}`;
  const percent = `${(100 * score.accuracy!).toFixed(1)}%`;
  return score.status === 'beyond_training' ? `${percent} *` : percent;
}

export function formatProbeTable(report: ProbeReport): string {
  const { settings } = report;
  const names = columns(report);
  const find = (name: string, distance: number) => report.scores.find((s) => `${s.task}/${s.arch}` === name && s.distance === distance);
  const chance = settings.tasks.map((task) => {
    const score = report.scores.find((s) => s.task === task);
    return `${task} ${score ? (100 * score.chance).toFixed(0) : '?'}%`;
  });
  const header = ['distance', ...names];
  const rows = settings.distances.map((distance) => [String(distance), ...names.map((name) => cell(find(name, distance), settings.window))]);
  const widths = header.map((title, i) => Math.max(title.length, ...rows.map((row) => row[i]!.length)));
  const line = (row: string[]) => row.map((text, i) => text.padStart(widths[i]!)).join('  ');
  const lines = [
    `accuracy at the answer, teacher-forced, ${settings.episodes} episodes per distance (chance: ${chance.join(', ')})`,
    line(header),
    ...rows.map(line),
  ];
  if (report.scores.some((s) => s.status === 'beyond_training')) {
    lines.push(`* past the training window of ${settings.window} tokens: the LSTM runs on, but was never trained that far`);
  }
  if (report.scores.some((s) => s.status === 'beyond_context')) {
    lines.push(`past context ${settings.window}: the dependency lies outside the Transformer's positions, so it cannot be scored`);
  }
  for (const run of report.runs) {
    const loss = run.valLoss === null ? 'no val loss' : `val loss ${run.valLoss.toFixed(3)}`;
    lines.push(`${run.task}/${run.arch}: ${run.parameters.toLocaleString('en')} parameters, ${run.steps} steps in ${run.trainSeconds.toFixed(0)}s `
      + `(${run.backend}), ${loss}, trained on distances ${run.trainDistances[0]}-${run.trainDistances[1]}, scored in ${run.scoreSeconds.toFixed(0)}s`);
  }
  lines.push(`total ${report.seconds.toFixed(0)}s`);
  return `${lines.join('\n')}\n`;
}

export function formatProbeJsonl(report: ProbeReport): string {
  const lines = [
    { type: 'settings', ...report.settings, seconds: report.seconds },
    ...report.runs.map((run) => ({ type: 'run', ...run })),
    ...report.scores.map((score) => ({ type: 'score', ...score })),
  ];
  return lines.map((line) => `${JSON.stringify(line)}\n`).join('');
}

export function renderProbeChart(report: ProbeReport): string {
  const { settings } = report;
  const x = (distance: number) => Math.log2(distance);
  const series: ChartSeries[] = columns(report).map((name, i) => ({
    label: name,
    colour: COLOURS[name] ?? ['#9467bd', '#8c564b', '#e377c2', '#17becf'][i % 4]!,
    strokeWidth: 2,
    markers: true,
    points: report.scores
      .filter((s) => `${s.task}/${s.arch}` === name && s.accuracy !== null)
      .map((s) => [x(s.distance), s.accuracy!] as const),
  }));
  for (const task of settings.tasks) {
    const chance = report.scores.find((s) => s.task === task)?.chance;
    if (chance === undefined || settings.distances.length === 0) continue;
    const ends = [settings.distances[0]!, settings.distances.at(-1)!];
    series.push({ label: `chance (${task})`, colour: '#999', strokeWidth: 1, points: ends.map((d) => [x(d), chance] as const) });
  }
  return renderLineChart({
    title: 'ferry probe: accuracy by dependency distance',
    subtitle: `${settings.steps} training steps per model, window ${settings.window}, ${settings.episodes} episodes per distance, seed ${settings.seed}`,
    xLabel: `log2 of the distance in tokens (3 = 8, 9 = 512); Transformer points end at its context`,
    yLabel: 'accuracy at the answer',
    series,
  });
}

/** Writes DIR/probe.jsonl and DIR/probe.svg, each under a temporary name renamed into place. */
export async function writeProbeReport(dir: string, report: ProbeReport): Promise<string[]> {
  const files: [string, string][] = [[join(dir, 'probe.jsonl'), formatProbeJsonl(report)], [join(dir, 'probe.svg'), renderProbeChart(report)]];
  try {
    await mkdir(dir, { recursive: true });
    for (const [path, text] of files) await writeFileAtomic(path, text);
  } catch (error) {
    throw new FerryError('output_not_writable', `Cannot write the probe's report into ${dir}: ${(error as Error).message}.`, {
      hint: 'Pass --out with a writable directory.',
    });
  }
  return files.map(([path]) => path);
}
