import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { niceTicks } from '../../src/ticks.ts';
import { createMetricsLog, parseMetrics, renderLossCurve, type MetricEvent } from '../../src/train/metrics.ts';
import { tempDir } from './trainer-helpers.ts';
import { assertWellFormedSvg } from './trainer-svg.ts';

const events: MetricEvent[] = [
  { type: 'train', step: 10, loss: 4.2, lr: 1e-3, gradNorm: 2.5, tokensPerSecond: 1000, seconds: 1 },
  { type: 'train', step: 20, loss: 3.1, lr: 1e-3, gradNorm: 1.5, tokensPerSecond: 1100, seconds: 2 },
  { type: 'eval', step: 20, valLoss: 3.3, valPerplexity: Math.exp(3.3), bestValLoss: 3.3, seconds: 2.1 },
  { type: 'train', step: 30, loss: 2.4, lr: 5e-4, gradNorm: 1.1, tokensPerSecond: 1050, seconds: 3 },
  { type: 'eval', step: 30, valLoss: 2.6, valPerplexity: Math.exp(2.6), bestValLoss: 2.6, seconds: 3.1 },
];

test('niceTicks covers the range with round steps', () => {
  assert.deepEqual(niceTicks(0, 10), [0, 2, 4, 6, 8, 10]);
  assert.deepEqual(niceTicks(2.4, 4.2), [2, 2.5, 3, 3.5, 4, 4.5]);
  assert.deepEqual(niceTicks(0, 2000), [0, 500, 1000, 1500, 2000]);
  const flat = niceTicks(3, 3);
  assert.ok(flat[0]! <= 3 && flat[flat.length - 1]! >= 3 && flat.length >= 2);
});

test('loss curve: well-formed SVG with labelled axes, one path per series, val points', () => {
  const svg = renderLossCurve(events);
  assertWellFormedSvg(svg);
  assert.match(svg, />step</);
  assert.match(svg, />loss \(cross-entropy, nats\/token\)</);
  const paths = [...svg.matchAll(/<path d="([^"]+)"/g)].map((match) => match[1]!);
  assert.equal(paths.length, 2);
  assert.equal(paths[0]!.split('L').length, 3, 'train path has three points');
  assert.equal(paths[1]!.split('L').length, 2, 'val path has two points');
  assert.equal([...svg.matchAll(/<circle /g)].length, 2);
  // SVG's y grows downwards, so the falling loss is drawn with growing y.
  const ys = paths[0]!.split(/[ML ]+/).filter(Boolean).map((point) => Number(point.split(',')[1]));
  assert.ok(ys[0]! < ys[1]! && ys[1]! < ys[2]!, `train ys ${ys}`);
  assertWellFormedSvg(renderLossCurve([]));
});

test('loss curve: titled with the run and model, the final losses under the title', () => {
  const svg = renderLossCurve(events, 'lstm-run: lstm, 1,234 parameters, char tokenizer');
  assert.match(svg, />lstm-run: lstm, 1,234 parameters, char tokenizer</);
  assert.match(svg, />step 30: train loss 2\.4000, val loss 2\.6000</);
  const worse = [...events, { type: 'eval', step: 40, valLoss: 2.9, valPerplexity: Math.exp(2.9), bestValLoss: 2.6, seconds: 4 } as const];
  assert.match(renderLossCurve(worse), />step 40: train loss 2\.4000, val loss 2\.9000 \(best 2\.6000 at step 30\)</);
  assert.match(renderLossCurve([]), />no steps yet</);
});

test('metrics log: appends one JSON line per event and redraws loss.svg atomically', () => {
  const dir = tempDir('ferry-metrics-');
  const log = createMetricsLog(dir, events.slice(0, 2));
  assert.deepEqual(parseMetrics(readFileSync(join(dir, 'metrics.jsonl'), 'utf8')), events.slice(0, 2));
  for (const event of events.slice(2)) log.record(event);
  log.drawCurve();
  const lines = readFileSync(join(dir, 'metrics.jsonl'), 'utf8').trimEnd().split('\n');
  assert.equal(lines.length, 5);
  assert.deepEqual(JSON.parse(lines[4]!), events[4]);
  assert.equal(log.events.length, 5);
  assertWellFormedSvg(readFileSync(join(dir, 'loss.svg'), 'utf8'));
  assert.deepEqual(readdirSync(dir).sort(), ['loss.svg', 'metrics.jsonl']);
});
