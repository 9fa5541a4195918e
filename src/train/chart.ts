/** Line charts as standalone SVG with labelled axes and a legend: training loss, loss by position. */
import { formatTick, niceTicks } from '../ticks.ts';

export interface ChartSeries {
  label: string;
  colour: string;
  points: readonly (readonly [number, number])[];
  strokeWidth: number;
  /** Dots at the points as well as the line. */
  markers?: boolean;
}

export interface LineChart {
  title: string;
  /** A line under the title (loss.svg: the final losses). */
  subtitle?: string;
  xLabel: string;
  yLabel: string;
  series: readonly ChartSeries[];
  /** The x axis starts here (default: the smallest x). */
  xFrom?: number;
}

const WIDTH = 720;
const HEIGHT = 420;
const MARGIN = { left: 70, right: 20, top: 56, bottom: 55 };

export function renderLineChart(chart: LineChart): string {
  const points = chart.series.flatMap((s) => s.points).filter(([, value]) => Number.isFinite(value));
  const xs = points.map(([x]) => x);
  const values = points.map(([, value]) => value);
  const yTicks = niceTicks(values.length ? Math.min(...values) : 0, values.length ? Math.max(...values) : 1);
  const xTicks = niceTicks(chart.xFrom ?? (xs.length ? Math.min(...xs) : 0), Math.max(1, ...xs));
  const [yMin, yMax] = [yTicks[0]!, yTicks[yTicks.length - 1]!];
  const [xMin, xMax] = [xTicks[0]!, xTicks[xTicks.length - 1]!];
  const plotWidth = WIDTH - MARGIN.left - MARGIN.right;
  const plotHeight = HEIGHT - MARGIN.top - MARGIN.bottom;
  const x = (value: number) => MARGIN.left + ((value - xMin) / (xMax - xMin)) * plotWidth;
  const y = (value: number) => MARGIN.top + (1 - (value - yMin) / (yMax - yMin)) * plotHeight;
  const finite = (series: ChartSeries) => series.points.filter(([, value]) => Number.isFinite(value));
  const pathOf = (series: ChartSeries) =>
    finite(series).map(([px, py], index) => `${index === 0 ? 'M' : 'L'}${x(px).toFixed(1)},${y(py).toFixed(1)}`).join(' ');
  const bottom = MARGIN.top + plotHeight;
  const right = MARGIN.left + plotWidth;

  const parts = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${WIDTH}" height="${HEIGHT}" viewBox="0 0 ${WIDTH} ${HEIGHT}" font-family="sans-serif" font-size="12">`,
    `<rect width="${WIDTH}" height="${HEIGHT}" fill="white"/>`,
    `<text x="${WIDTH / 2}" y="22" text-anchor="middle" font-size="15">${escapeXml(chart.title)}</text>`,
    ...(chart.subtitle === undefined ? [] : [`<text x="${WIDTH / 2}" y="40" text-anchor="middle" fill="#444">${escapeXml(chart.subtitle)}</text>`]),
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
    `<text x="${MARGIN.left + plotWidth / 2}" y="${HEIGHT - 12}" text-anchor="middle">${escapeXml(chart.xLabel)}</text>`,
    `<text transform="translate(18 ${MARGIN.top + plotHeight / 2}) rotate(-90)" text-anchor="middle">${escapeXml(chart.yLabel)}</text>`,
  ];
  for (const series of chart.series) {
    if (!series.points.length) continue;
    parts.push(`<path d="${pathOf(series)}" fill="none" stroke="${series.colour}" stroke-width="${series.strokeWidth}"/>`);
    if (series.markers) {
      for (const [px, py] of finite(series)) parts.push(`<circle cx="${x(px).toFixed(1)}" cy="${y(py).toFixed(1)}" r="2.5" fill="${series.colour}"/>`);
    }
  }
  chart.series.forEach((series, i) => {
    const row = MARGIN.top + 12 + 18 * i;
    parts.push(
      `<line x1="${right - 120}" y1="${row}" x2="${right - 100}" y2="${row}" stroke="${series.colour}" stroke-width="2"/>`,
      `<text x="${right - 95}" y="${row + 4}">${escapeXml(series.label)}</text>`,
    );
  });
  parts.push('</svg>');
  return `${parts.join('\n')}\n`;
}

function escapeXml(text: string): string {
  return text.replace(/[<>&"]/g, (char) => ({ '<': '&lt;', '>': '&gt;', '&': '&amp;', '"': '&quot;' })[char]!);
}
