/**
 * The synthetic tasks of `ferry probe`: episodes of text in which one token (the answer) can only
 * be predicted from a token exactly `distance` tokens before it. Everything else in an episode is
 * noise or structure, so a model's accuracy at the answers measures how far back it can use its
 * context. Episodes are drawn from mulberry32 with a seed: the same seed gives the same text.
 *
 * - recall (associative recall): a stream of key/value pairs under one random table per episode
 *   (16 keys, values digits); a key that comes back must be followed by the value it had. In a
 *   scored episode the key comes back exactly `distance` tokens after its only earlier pair, with
 *   pairs of other keys between, so its value can only come from `distance` tokens back.
 * - brackets (bracket matching): an opening bracket, a balanced filler of brackets and letters,
 *   and the closer of the first bracket, `distance` tokens after it. The filler nests other
 *   brackets, so the answer is the one that matches the bracket still open at depth 1.
 *
 * Every episode ends with a newline. The characters are chosen so that none has two roles: keys
 * are lowercase a-p, values digits, brackets' letters x-z.
 */
import { FerryError } from '../../errors.ts';
import { mulberry32 } from '../../random.ts';

export const PROBE_TASKS = ['recall', 'brackets'] as const;
export type ProbeTask = (typeof PROBE_TASKS)[number];

export interface Episode {
  text: string;
  /** Index (in characters = char tokens) of the answer: the one token that is scored. */
  answer: number;
  /** Index of the token the answer depends on: always answer - distance. */
  source: number;
}

const KEYS = 'abcdefghijklmnop';
const VALUES = '0123456789';
const OPENERS = '([{<';
const CLOSERS = ')]}>';
const LETTERS = 'xyz';
const SEPARATOR = '\n';

/** The tokens an answer can be, per task: a prediction is the most likely of these (chance is 1 / their number). */
export const ANSWER_ALPHABETS: Readonly<Record<ProbeTask, string>> = { recall: VALUES, brackets: CLOSERS };

/** Every character a task's text can hold, so that a char tokenizer built from any corpus of it knows them all. */
export const TASK_ALPHABETS: Readonly<Record<ProbeTask, string>> = {
  recall: KEYS + VALUES + SEPARATOR,
  brackets: OPENERS + CLOSERS + LETTERS + SEPARATOR,
};

/** The shortest distance each task can express. */
export const MIN_DISTANCE: Readonly<Record<ProbeTask, number>> = { recall: 2, brackets: 2 };

export type Random = () => number;

function pick(alphabet: string, random: Random): string {
  return alphabet[Math.floor(random() * alphabet.length)]!;
}

export function generateEpisode(task: ProbeTask, distance: number, random: Random): Episode {
  if (!Number.isInteger(distance) || distance < MIN_DISTANCE[task] || (task === 'recall' && distance % 2 !== 0)) {
    throw new FerryError('invalid_flag', `A ${task} episode needs a whole distance of at least ${MIN_DISTANCE[task]}${task === 'recall' ? ', even (pairs are two tokens)' : ''}, got ${distance}.`);
  }
  return task === 'recall' ? recallEpisode(distance, random) : bracketsEpisode(distance, random);
}

/** Key i is drawn with weight 1 / (i + 1) (Zipf): common keys recur within a few tokens, rare ones a hundred or more later. */
const KEY_WEIGHTS = [...KEYS].map((_, i) => 1 / (i + 1));

function pickKey(random: Random, except: number | undefined): number {
  const total = KEY_WEIGHTS.reduce((sum, weight, i) => (i === except ? sum : sum + weight), 0);
  let left = random() * total;
  for (let i = 0; i < KEYS.length; i += 1) {
    if (i === except) continue;
    left -= KEY_WEIGHTS[i]!;
    if (left < 0) return i;
  }
  return except === KEYS.length - 1 ? KEYS.length - 2 : KEYS.length - 1;
}

/** Each key's value for one episode: the table a model must hold. */
function drawValues(random: Random): string[] {
  return [...KEYS].map(() => pick(VALUES, random));
}

/**
 * A recall training episode: `pairs` key/value pairs under one random table, keys drawn Zipf, then
 * a newline. Every value after its key's first pair is predictable from the last time that key
 * came, at whatever distance that was: half the tokens are answers, at distances from 2 to hundreds.
 */
export function recallStream(pairs: number, random: Random): string {
  const values = drawValues(random);
  let text = '';
  for (let i = 0; i < pairs; i += 1) {
    const key = pickKey(random, undefined);
    text += `${KEYS[key]}${values[key]}`;
  }
  return `${text}${SEPARATOR}`;
}

/** Pairs of lead-in before a scored episode's stored key, as a window in the middle of a stream would have. */
const LEAD_PAIRS = 4;

/**
 * A scored recall episode: lead-in pairs, the key K and its value, pairs of other keys for
 * distance - 2 tokens, then K again and its value (the answer), then a newline. K occurs nowhere
 * else, so the one place its value can come from is exactly `distance` tokens before the answer.
 */
function recallEpisode(distance: number, random: Random): Episode {
  const values = drawValues(random);
  const key = Math.floor(random() * KEYS.length);
  const pairOf = (k: number) => `${KEYS[k]}${values[k]}`;
  const others = (count: number) => Array.from({ length: count }, () => pairOf(pickKey(random, key))).join('');
  const lead = others(LEAD_PAIRS);
  const text = `${lead}${pairOf(key)}${others(distance / 2 - 1)}${pairOf(key)}${SEPARATOR}`;
  return { text, answer: lead.length + distance + 1, source: lead.length + 1 };
}

/**
 * O filler C \n: the filler is distance - 1 tokens of brackets (any type, properly nested) and
 * letters, balanced, so that C, `distance` after O, closes O.
 */
function bracketsEpisode(distance: number, random: Random): Episode {
  const opener = Math.floor(random() * OPENERS.length);
  const stack: number[] = [];
  let text = OPENERS[opener]!;
  for (let left = distance - 1; left > 0; left -= 1) {
    // Each choice must leave room to close what is open: depth <= tokens left after it.
    const choices: ('open' | 'close' | 'letter')[] = [];
    if (stack.length + 1 <= left - 1) choices.push('open');
    if (stack.length > 0) choices.push('close');
    if (stack.length <= left - 1) choices.push('letter');
    const choice = choices[Math.floor(random() * choices.length)]!;
    if (choice === 'open') {
      const type = Math.floor(random() * OPENERS.length);
      stack.push(type);
      text += OPENERS[type];
    } else if (choice === 'close') {
      text += CLOSERS[stack.pop()!];
    } else {
      text += pick(LETTERS, random);
    }
  }
  text += `${CLOSERS[opener]}${SEPARATOR}`;
  return { text, answer: distance, source: 0 };
}

/** A distance drawn log-uniformly in [min, max]: short dependencies as often per octave as long ones. */
export function logUniformDistance([min, max]: readonly [number, number], random: Random): number {
  return Math.min(max, Math.floor(Math.exp(Math.log(min) + random() * (Math.log(max + 1) - Math.log(min)))));
}

/**
 * One episode of training text. recall: a stream of as many pairs as the longest distance, so
 * that windows hold every distance up to it; brackets: one episode at a log-uniform distance.
 */
export function trainingEpisode(task: ProbeTask, range: readonly [number, number], random: Random): string {
  return task === 'recall' ? recallStream(range[1], random) : generateEpisode(task, logUniformDistance(range, random), random).text;
}

/**
 * A training corpus of training episodes, until it holds at least `characters` characters. It
 * starts with a line of the task's whole alphabet, so that the char tokenizer built from it can
 * encode any episode of the task, whatever the draw.
 */
export function generateCorpus(task: ProbeTask, range: readonly [number, number], characters: number, seed: number): string {
  const random = mulberry32(seed);
  const parts = [`${TASK_ALPHABETS[task].replace(SEPARATOR, '')}${SEPARATOR}`];
  let length = parts[0]!.length;
  while (length < characters) {
    const episode = trainingEpisode(task, range, random);
    parts.push(episode);
    length += episode.length;
  }
  return parts.join('');
}
