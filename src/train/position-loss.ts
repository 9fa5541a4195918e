/**
 * Loss by position (`ferry eval --by-position`): held-out text cut into windows that each start
 * from an empty context (a fresh LSTM state, an empty KV cache), and the mean next-token loss at
 * each position of the window: how much each further token of context helps. Written as a table,
 * JSONL (one line per position) and an SVG chart. The scorers live with their runtimes (tfjs in
 * evaluate.ts, onnxruntime in src/export/position-loss.ts); this module owns the format.
 */
import { renameSync, writeFileSync } from 'node:fs';
import { FerryError } from '../errors.ts';
import { renderLineChart } from './chart.ts';
import type { ModelConfig } from './models/index.ts';

export interface PositionLoss {
  /** 0-based: the loss of predicting token position + 1 from the position + 1 tokens before it. */
  position: number;
  /** Mean cross-entropy, nats per token. */
  loss: number;
  /** Windows scored at this position. */
  tokens: number;
}

export interface PositionLossReport {
  model: string;
  arch: string;
  window: number;
  windows: number;
  /** Mean over every scored token. */
  loss: number;
  positions: PositionLoss[];
}

/**
 * The window a model can be scored over: any for an LSTM and for ALiBi (relative biases go on
 * past the training length), at most the context where a position table ends (learned,
 * sinusoidal, RoPE).
 */
export function checkWindow(config: ModelConfig, window: number): number {
  if (config.arch === 'transformer' && config.positional !== 'alibi' && window > config.blockSize) {
    throw new FerryError('window_too_long', `--window ${window} is longer than this Transformer's context of ${config.blockSize} (its ${config.positional} positions end there).`, {
      hint: `Pass --window ${config.blockSize} or less.`,
    });
  }
  return window;
}

/** The starts of the full windows of `window` inputs (and one more token to predict) in `tokens` ids. */
export function windowStarts(tokens: number, window: number): number[] {
  const count = Math.floor((tokens - 1) / window);
  if (count < 1) {
    throw new FerryError('corpus_too_short', `The corpus holds ${tokens} token(s); loss by position needs at least ${window + 1} (one window and its next token).`, {
      hint: 'Evaluate on a longer held-out text, or pass a smaller --window.',
    });
  }
  return Array.from({ length: count }, (_, i) => i * window);
}

/** Sums of the loss at each position over every window, turned into means. */
export function positionLosses(sums: Float64Array, windows: number): PositionLoss[] {
  return Array.from(sums, (sum, position) => ({ position, loss: sum / windows, tokens: windows }));
}

export function formatPositionTable(report: PositionLossReport): string {
  const lines = [`${report.model} (${report.arch}): ${report.windows} windows of ${report.window} tokens, mean loss ${report.loss.toFixed(4)} nats/token`, 'position  context  loss (nats)  perplexity'];
  for (const p of report.positions) {
    lines.push(`${String(p.position).padStart(8)}  ${String(p.position + 1).padStart(7)}  ${p.loss.toFixed(4).padStart(11)}  ${Math.exp(p.loss).toFixed(3).padStart(10)}`);
  }
  return `${lines.join('\n')}\n`;
}

export function formatPositionJsonl(report: PositionLossReport): string {
  return report.positions.map((p) => `${JSON.stringify({ model: report.model, arch: report.arch, ...p })}\n`).join('');
}

export function renderPositionChart(report: PositionLossReport): string {
  return renderLineChart({
    title: `loss by position: ${report.model} (${report.arch})`,
    xLabel: 'position in the window (tokens of context - 1)',
    yLabel: 'loss (cross-entropy, nats/token)',
    xFrom: 0,
    series: [{ label: report.arch, colour: '#1f77b4', points: report.positions.map((p) => [p.position, p.loss] as const), strokeWidth: 2, markers: report.positions.length <= 64 }],
  });
}

/** Writes PREFIX.jsonl and PREFIX.svg, each to a temp file renamed into place. */
export function writePositionReport(prefix: string, report: PositionLossReport): string[] {
  const files: [string, string][] = [[`${prefix}.jsonl`, formatPositionJsonl(report)], [`${prefix}.svg`, renderPositionChart(report)]];
  for (const [path, text] of files) {
    const temporary = `${path}.tmp-${process.pid}`;
    try {
      writeFileSync(temporary, text);
      renameSync(temporary, path);
    } catch (error) {
      throw new FerryError('output_not_writable', `Cannot write ${path}: ${(error as Error).message}.`, { hint: 'Pass --out with a prefix in a writable directory.' });
    }
  }
  return files.map(([path]) => path);
}
