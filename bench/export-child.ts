/** One export without verification, for bench/export.ts: prints seconds and peak RSS as JSON. */
import { readFileSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import * as tf from '@tensorflow/tfjs';
import { exportModel } from '../src/export/index.ts';
import '../src/train/models/index.ts';

/** Peak RSS of this process image in MB (VmHWM; getrusage's maxRSS survives exec, so a big parent would show). */
function peakRssMB(): number {
  const line = readFileSync('/proc/self/status', 'utf8').split('\n').find((l) => l.startsWith('VmHWM:'));
  return line ? Number(line.split(/\s+/)[1]) / 1024 : process.resourceUsage().maxRSS / 1024;
}

const [source, outDir] = process.argv.slice(2) as [string, string];
await tf.ready();
const baselineRssMB = peakRssMB();
const started = performance.now();
await exportModel({ source, outDir, verify: false });
const seconds = (performance.now() - started) / 1000;
console.log(JSON.stringify({ seconds, peakRssMB: peakRssMB(), baselineRssMB }));
