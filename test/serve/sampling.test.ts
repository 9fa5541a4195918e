import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import {
  adjustLogits, argmax, countTokens, createRandom, filteredDistribution, GREEDY, logSoftmax, sampleToken, topLogprobs, type SamplingParams,
} from '../../src/serve/sampling.ts';

const params = (over: Partial<SamplingParams>): SamplingParams => ({ ...GREEDY, temperature: 1, ...over });
const close = (a: number, b: number, eps = 1e-6) => assert.ok(Math.abs(a - b) < eps, `${a} != ${b}`);
const logitsOf = (probs: number[]) => Float32Array.from(probs.map(Math.log));

test('greedy takes the argmax, the lowest id on ties', () => {
  assert.equal(argmax(Float32Array.from([1, 3, 3, 2])), 1);
  assert.equal(sampleToken(Float32Array.from([0.1, 0.9, 0.5]), GREEDY, new Map(), createRandom(1)), 1);
});

test('temperature scales logits before the softmax', () => {
  const { ids, probs } = filteredDistribution(Float32Array.from([2, 0]), params({ temperature: 2 }));
  assert.deepEqual(ids, [0, 1]);
  close(probs[0]!, Math.exp(1) / (Math.exp(1) + 1));
});

test('top-k keeps the k most likely tokens and renormalises', () => {
  const { ids, probs } = filteredDistribution(logitsOf([0.1, 0.4, 0.2, 0.3]), params({ topK: 2 }));
  assert.deepEqual(ids, [1, 3]);
  close(probs[0]!, 0.4 / 0.7);
  close(probs[1]!, 0.3 / 0.7);
});

test('top-p keeps the smallest most-likely set reaching p', () => {
  const logits = logitsOf([0.5, 0.3, 0.15, 0.05]);
  assert.deepEqual(filteredDistribution(logits, params({ topP: 0.75 })).ids, [0, 1]);
  assert.deepEqual(filteredDistribution(logits, params({ topP: 0.81 })).ids, [0, 1, 2]);
  assert.deepEqual(filteredDistribution(logits, params({ topP: 0.1 })).ids, [0]);
});

test('min-p drops tokens below p times the top probability', () => {
  const { ids, probs } = filteredDistribution(logitsOf([0.5, 0.3, 0.15, 0.05]), params({ minP: 0.29 }));
  assert.deepEqual(ids, [0, 1, 2]);
  close(probs[2]!, 0.15 / 0.95);
});

test('repetition penalty divides positive and multiplies negative logits of seen tokens', () => {
  const out = adjustLogits(Float32Array.from([2, -2, 2]), params({ repetitionPenalty: 2 }), countTokens([0, 1, 1]));
  assert.deepEqual([...out], [1, -4, 2]);
});

test('frequency and presence penalties and logit bias follow OpenAI\'s formula', () => {
  const out = adjustLogits(Float32Array.from([1, 1, 1]), params({ frequencyPenalty: 0.5, presencePenalty: 0.25, logitBias: new Map([[2, -3]]) }), countTokens([0, 0, 1]));
  assert.deepEqual([...out], [1 - 2 * 0.5 - 0.25, 1 - 0.5 - 0.25, -2]);
});

test('same seed, same stream; different seeds differ; values lie in [0, 1)', () => {
  const a = createRandom(42), b = createRandom(42), c = createRandom(43), d = createRandom(-42);
  const xs = Array.from({ length: 1000 }, () => a());
  assert.deepEqual(xs.slice(0, 10), Array.from({ length: 10 }, () => b()));
  assert.notDeepEqual(xs.slice(0, 10), Array.from({ length: 10 }, () => c()));
  assert.notDeepEqual(xs.slice(0, 10), Array.from({ length: 10 }, () => d()));
  assert.ok(xs.every((x) => x >= 0 && x < 1));
  const mean = xs.reduce((s, x) => s + x, 0) / xs.length;
  assert.ok(Math.abs(mean - 0.5) < 0.05, `mean ${mean}`);
});

test('sampling draws tokens at their probabilities', () => {
  const random = createRandom(7);
  const counts = [0, 0, 0];
  for (let i = 0; i < 20000; i++) counts[sampleToken(logitsOf([0.6, 0.3, 0.1]), params({}), new Map(), random)]!++;
  assert.deepEqual(counts.map((c) => Math.round(c / 2000)), [6, 3, 1]);
});

test('logSoftmax and topLogprobs', () => {
  const lp = logSoftmax(logitsOf([0.5, 0.25, 0.125, 0.125]));
  close(lp[0]!, Math.log(0.5));
  assert.deepEqual(topLogprobs(lp, 2).map((t) => t.id), [0, 1]);
  assert.deepEqual(topLogprobs(lp, 0), []);
  assert.equal(topLogprobs(lp, 9).length, 4);
});

test('top-k over a large vocabulary keeps exactly the k best, the lower id on ties', () => {
  const logits = new Float32Array(5000).map((_, i) => Math.sin(i) * 3);
  logits[4000] = logits[10] = 50;
  const { ids } = filteredDistribution(logits, params({ topK: 3 }));
  const expected = Array.from(logits.keys()).sort((a, b) => logits[b]! - logits[a]! || a - b).slice(0, 3);
  assert.deepEqual(ids, expected);
  assert.deepEqual(ids.slice(0, 2), [10, 4000]);
});

test('top-k with ties at the cut keeps the k largest, lower ids first among equals, for any k', () => {
  fc.assert(fc.property(fc.array(fc.integer({ min: -3, max: 3 }), { minLength: 2, maxLength: 80 }), fc.nat(), (values, pick) => {
    const logits = Float32Array.from(values);
    const k = 1 + (pick % (logits.length - 1));
    const expected = Array.from(logits.keys()).sort((a, b) => logits[b]! - logits[a]! || a - b).slice(0, k);
    assert.deepEqual(filteredDistribution(logits, params({ topK: k })).ids, expected);
  }), { numRuns: 500 });
});

test('sampling with top-k draws among the k best at renormalised probabilities', () => {
  const random = createRandom(3);
  const counts = [0, 0, 0];
  for (let i = 0; i < 9000; i++) counts[sampleToken(logitsOf([0.6, 0.3, 0.1]), params({ topK: 2 }), new Map(), random)]!++;
  assert.deepEqual(counts.map((c) => Math.round(c / 1000)), [6, 3, 0]);
});
