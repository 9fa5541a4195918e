/** One export without verification, for bench/export.ts: prints seconds and peak RSS as JSON. */
import { performance } from 'node:perf_hooks';
import * as tf from '@tensorflow/tfjs';
import { exportModel } from '../src/export/index.ts';
import '../src/train/models/index.ts';

const [source, outDir] = process.argv.slice(2) as [string, string];
await tf.ready();
const baselineRssMB = process.resourceUsage().maxRSS / 1024;
const started = performance.now();
await exportModel({ source, outDir, verify: false });
const seconds = (performance.now() - started) / 1000;
console.log(JSON.stringify({ seconds, peakRssMB: process.resourceUsage().maxRSS / 1024, baselineRssMB }));
