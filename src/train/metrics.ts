import { appendFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { renderLineChart } from './chart.ts';

/** One line of `metrics.jsonl`: a periodic training log or an evaluation on the val split. */
export type MetricEvent = TrainEvent | EvalEvent;

export interface TrainEvent {
  type: 'train';
  step: number;
  /** Mean training loss (cross-entropy, nats per token) over the steps since the previous log. */
  loss: number;
  lr: number;
  gradNorm: number;
  tokensPerSecond: number;
  seconds: number;
}

export interface EvalEvent {
  type: 'eval';
  step: number;
  valLoss: number;
  valPerplexity: number;
  bestValLoss: number;
  /** T5 runs: the share of held-out pairs whose greedy output is the whole target, and the character error rate. */
  exactMatch?: number;
  cer?: number;
  seconds: number;
}

export function formatMetrics(events: readonly MetricEvent[]): string {
  return events.map((event) => `${JSON.stringify(event)}\n`).join('');
}

export function parseMetrics(text: string): MetricEvent[] {
  return text
    .split('\n')
    .filter((line) => line.trim() !== '')
    .map((line) => JSON.parse(line) as MetricEvent);
}

/**
 * The run dir's live record: every event is appended to `metrics.jsonl` as it happens, and
 * `loss.svg` is redrawn (temp file + rename) whenever asked.
 */
export function createMetricsLog(runDir: string, previous: readonly MetricEvent[] = [], title?: string) {
  const events: MetricEvent[] = [...previous];
  const metricsPath = join(runDir, 'metrics.jsonl');
  const curvePath = join(runDir, 'loss.svg');
  writeAtomically(metricsPath, formatMetrics(events));

  function record(event: MetricEvent): void {
    events.push(event);
    appendFileSync(metricsPath, `${JSON.stringify(event)}\n`);
  }

  function drawCurve(): void {
    writeAtomically(curvePath, renderLossCurve(events, title));
  }

  /** The curve as it stands, for a checkpoint's copy. */
  const curve = () => renderLossCurve(events, title);

  return { events: events as readonly MetricEvent[], record, drawCurve, curve };
}

export type MetricsLog = ReturnType<typeof createMetricsLog>;

function writeAtomically(path: string, text: string): void {
  const temporary = `${path}.tmp-${process.pid}`;
  writeFileSync(temporary, text);
  renameSync(temporary, path);
}

const TRAIN_COLOUR = '#1f77b4';
const VAL_COLOUR = '#ff7f0e';

/** Train and val loss against step as a standalone SVG: the title, the final losses under it, labelled axes and a legend. */
export function renderLossCurve(events: readonly MetricEvent[], title = 'ferry training loss'): string {
  const train = events.filter((event): event is TrainEvent => event.type === 'train').map((e) => [e.step, e.loss] as const);
  const val = events.filter((event): event is EvalEvent => event.type === 'eval').map((e) => [e.step, e.valLoss] as const);
  return renderLineChart({
    title,
    subtitle: finalLosses(events),
    xLabel: 'step',
    yLabel: 'loss (cross-entropy, nats/token)',
    xFrom: 0,
    series: [
      { label: 'train', colour: TRAIN_COLOUR, points: train, strokeWidth: 1.5 },
      { label: 'val', colour: VAL_COLOUR, points: val, strokeWidth: 2, markers: true },
    ],
  });
}

/** "step 200: train loss 1.8123, val loss 1.9011 (best 1.8950 at step 150)", from the last events. */
export function finalLosses(events: readonly MetricEvent[]): string {
  const train = events.filter((event): event is TrainEvent => event.type === 'train').at(-1);
  const evals = events.filter((event): event is EvalEvent => event.type === 'eval');
  const val = evals.at(-1);
  if (!train && !val) return 'no steps yet';
  const best = evals.reduce<EvalEvent | undefined>((found, event) => (found === undefined || event.valLoss < found.valLoss ? event : found), undefined);
  const parts = [train ? `train loss ${train.loss.toFixed(4)}` : undefined, val ? `val loss ${val.valLoss.toFixed(4)}` : undefined].filter(Boolean);
  const step = Math.max(train?.step ?? 0, val?.step ?? 0);
  return `step ${step}: ${parts.join(', ')}` + (best && best !== val ? ` (best ${best.valLoss.toFixed(4)} at step ${best.step})` : '');
}
