/**
 * The playground's training-loss chart: train and val loss against step, with both axes ticked
 * and labelled, a legend, and the final losses in the title (as loss.svg in the run dir).
 */
import { formatTick, niceTicks } from '../../ticks.ts';

export type Series = readonly (readonly [step: number, loss: number])[];

const WIDTH = 460;
const HEIGHT = 260;
const MARGIN = { left: 52, right: 22, top: 34, bottom: 40 };
const TRAIN = '#1f77b4';
const VAL = '#ff7f0e';

export function lossChartSvg(train: Series, val: Series): string {
  const all = [...train, ...val].filter(([, loss]) => Number.isFinite(loss));
  const losses = all.map(([, loss]) => loss);
  const xTicks = niceTicks(0, Math.max(1, ...all.map(([step]) => step)));
  const yTicks = niceTicks(Math.min(...losses), Math.max(...losses));
  const [xMax, yMin, yMax] = [xTicks.at(-1)!, yTicks[0]!, yTicks.at(-1)!];
  const plotWidth = WIDTH - MARGIN.left - MARGIN.right;
  const plotHeight = HEIGHT - MARGIN.top - MARGIN.bottom;
  const bottom = MARGIN.top + plotHeight;
  const x = (step: number) => (MARGIN.left + (step / xMax) * plotWidth).toFixed(1);
  const y = (loss: number) => (MARGIN.top + (1 - (loss - yMin) / (yMax - yMin)) * plotHeight).toFixed(1);
  const line = (series: Series, colour: string) =>
    series.length ? `<polyline fill="none" stroke="${colour}" stroke-width="1.5" points="${series.map(([s, l]) => `${x(s)},${y(l)}`).join(' ')}"/>` : '';
  const last = (series: Series) => series.at(-1)?.[1];
  const title = [last(train) === undefined ? '' : `train ${last(train)!.toFixed(3)}`, last(val) === undefined ? '' : `val ${last(val)!.toFixed(3)}`]
    .filter(Boolean).join(', ');
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" role="img" aria-label="training loss" width="${WIDTH}" height="${HEIGHT}" viewBox="0 0 ${WIDTH} ${HEIGHT}" font-size="11" font-family="system-ui, sans-serif">`,
    `<text x="${WIDTH / 2}" y="16" text-anchor="middle" font-size="13">final loss: ${title}</text>`,
    ...xTicks.map((tick) => `<line x1="${x(tick)}" y1="${MARGIN.top}" x2="${x(tick)}" y2="${bottom}" stroke="#eee"/><text class="x-tick" x="${x(tick)}" y="${bottom + 14}" text-anchor="middle">${formatTick(tick)}</text>`),
    ...yTicks.map((tick) => `<line x1="${MARGIN.left}" y1="${y(tick)}" x2="${WIDTH - MARGIN.right}" y2="${y(tick)}" stroke="#eee"/><text class="y-tick" x="${MARGIN.left - 5}" y="${Number(y(tick)) + 4}" text-anchor="end">${formatTick(tick)}</text>`),
    `<line x1="${MARGIN.left}" y1="${bottom}" x2="${WIDTH - MARGIN.right}" y2="${bottom}" stroke="#000"/>`,
    `<line x1="${MARGIN.left}" y1="${MARGIN.top}" x2="${MARGIN.left}" y2="${bottom}" stroke="#000"/>`,
    `<text x="${MARGIN.left + plotWidth / 2}" y="${HEIGHT - 6}" text-anchor="middle">step</text>`,
    `<text transform="translate(13 ${MARGIN.top + plotHeight / 2}) rotate(-90)" text-anchor="middle">loss (nats/token)</text>`,
    line(train, TRAIN),
    line(val, VAL),
    `<line x1="${WIDTH - 110}" y1="${MARGIN.top + 8}" x2="${WIDTH - 94}" y2="${MARGIN.top + 8}" stroke="${TRAIN}" stroke-width="2"/><text x="${WIDTH - 90}" y="${MARGIN.top + 12}">train</text>`,
    `<line x1="${WIDTH - 60}" y1="${MARGIN.top + 8}" x2="${WIDTH - 44}" y2="${MARGIN.top + 8}" stroke="${VAL}" stroke-width="2"/><text x="${WIDTH - 40}" y="${MARGIN.top + 12}">val</text>`,
    '</svg>',
  ].join('');
}
