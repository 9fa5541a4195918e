import { appendFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { formatTick, niceTicks } from '../ticks.ts';

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

const WIDTH = 720;
const HEIGHT = 420;
const MARGIN = { left: 70, right: 20, top: 56, bottom: 55 };
const TRAIN_COLOUR = '#1f77b4';
const VAL_COLOUR = '#ff7f0e';

/** Train and val loss against step as a standalone SVG: the title, the final losses under it, labelled axes and a legend. */
export function renderLossCurve(events: readonly MetricEvent[], title = 'ferry training loss'): string {
  const train = events.filter((event): event is TrainEvent => event.type === 'train').map((e) => [e.step, e.loss] as const);
  const val = events.filter((event): event is EvalEvent => event.type === 'eval').map((e) => [e.step, e.valLoss] as const);
  const points = [...train, ...val].filter(([, loss]) => Number.isFinite(loss));
  const maxStep = Math.max(1, ...points.map(([step]) => step));
  const losses = points.map(([, loss]) => loss);
  const yTicks = niceTicks(losses.length ? Math.min(...losses) : 0, losses.length ? Math.max(...losses) : 1);
  const xTicks = niceTicks(0, maxStep);
  const [yMin, yMax] = [yTicks[0]!, yTicks[yTicks.length - 1]!];
  const [xMin, xMax] = [xTicks[0]!, xTicks[xTicks.length - 1]!];
  const plotWidth = WIDTH - MARGIN.left - MARGIN.right;
  const plotHeight = HEIGHT - MARGIN.top - MARGIN.bottom;
  const x = (step: number) => MARGIN.left + ((step - xMin) / (xMax - xMin)) * plotWidth;
  const y = (loss: number) => MARGIN.top + (1 - (loss - yMin) / (yMax - yMin)) * plotHeight;
  const pathOf = (series: readonly (readonly [number, number])[]) =>
    series
      .filter(([, loss]) => Number.isFinite(loss))
      .map(([step, loss], index) => `${index === 0 ? 'M' : 'L'}${x(step).toFixed(1)},${y(loss).toFixed(1)}`)
      .join(' ');
  const bottom = MARGIN.top + plotHeight;
  const right = MARGIN.left + plotWidth;

  const parts = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${WIDTH}" height="${HEIGHT}" viewBox="0 0 ${WIDTH} ${HEIGHT}" font-family="sans-serif" font-size="12">`,
    `<rect width="${WIDTH}" height="${HEIGHT}" fill="white"/>`,
    `<text x="${WIDTH / 2}" y="22" text-anchor="middle" font-size="15">${escapeXml(title)}</text>`,
    `<text x="${WIDTH / 2}" y="40" text-anchor="middle" fill="#444">${escapeXml(finalLosses(events))}</text>`,
    ...xTicks.map(
      (tick) =>
        `<line x1="${x(tick).toFixed(1)}" y1="${MARGIN.top}" x2="${x(tick).toFixed(1)}" y2="${bottom}" stroke="#eee"/>` +
        `<text x="${x(tick).toFixed(1)}" y="${bottom + 16}" text-anchor="middle">${formatTick(tick)}</text>`,
    ),
    ...yTicks.map(
      (tick) =>
        `<line x1="${MARGIN.left}" y1="${y(tick).toFixed(1)}" x2="${right}" y2="${y(tick).toFixed(1)}" stroke="#eee"/>` +
        `<text x="${MARGIN.left - 6}" y="${(y(tick) + 4).toFixed(1)}" text-anchor="end">${formatTick(tick)}</text>`,
    ),
    `<line x1="${MARGIN.left}" y1="${bottom}" x2="${right}" y2="${bottom}" stroke="black"/>`,
    `<line x1="${MARGIN.left}" y1="${MARGIN.top}" x2="${MARGIN.left}" y2="${bottom}" stroke="black"/>`,
    `<text x="${MARGIN.left + plotWidth / 2}" y="${HEIGHT - 12}" text-anchor="middle">step</text>`,
    `<text transform="translate(18 ${MARGIN.top + plotHeight / 2}) rotate(-90)" text-anchor="middle">loss (cross-entropy, nats/token)</text>`,
  ];
  if (train.length) parts.push(`<path d="${pathOf(train)}" fill="none" stroke="${TRAIN_COLOUR}" stroke-width="1.5"/>`);
  if (val.length) {
    parts.push(`<path d="${pathOf(val)}" fill="none" stroke="${VAL_COLOUR}" stroke-width="2"/>`);
    for (const [step, loss] of val.filter(([, loss]) => Number.isFinite(loss))) {
      parts.push(`<circle cx="${x(step).toFixed(1)}" cy="${y(loss).toFixed(1)}" r="2.5" fill="${VAL_COLOUR}"/>`);
    }
  }
  parts.push(
    `<line x1="${right - 120}" y1="${MARGIN.top + 12}" x2="${right - 100}" y2="${MARGIN.top + 12}" stroke="${TRAIN_COLOUR}" stroke-width="2"/>`,
    `<text x="${right - 95}" y="${MARGIN.top + 16}">train</text>`,
    `<line x1="${right - 120}" y1="${MARGIN.top + 30}" x2="${right - 100}" y2="${MARGIN.top + 30}" stroke="${VAL_COLOUR}" stroke-width="2"/>`,
    `<text x="${right - 95}" y="${MARGIN.top + 34}">val</text>`,
    '</svg>',
  );
  return `${parts.join('\n')}\n`;
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

function escapeXml(text: string): string {
  return text.replace(/[<>&"]/g, (char) => ({ '<': '&lt;', '>': '&gt;', '&': '&amp;', '"': '&quot;' })[char]!);
}
