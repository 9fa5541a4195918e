/**
 * The synthetic tasks of `ferry probe`: episodes of text in which one token (the answer) can only
 * be predicted from a token exactly `distance` tokens before it. Everything else in an episode is
 * noise or structure, so a model's accuracy at the answers measures how far back it can use its
 * context. Episodes are drawn from mulberry32 with a seed: the same seed gives the same text.
 *
 * - recall (associative recall): a stream of facts ("key k has value v", one token each: 8 keys,
 *   values digits) and questions (a key, then its value), under one random table per episode.
 *   In a scored episode a key is asked exactly `distance` tokens after its only fact, with facts
 *   and questions of other keys between, so its value can only come from `distance` tokens back.
 *   A fact is one token so that one attention lookup (match the key, read the value) answers it:
 *   with two-token pairs neither small model learned recall at all in the probe's budget.
 * - brackets (bracket matching): an opening bracket, a balanced filler of brackets and letters,
 *   and the closer of the first bracket, `distance` tokens after it. The filler nests other
 *   brackets, so the answer is the one that matches the bracket still open at depth 1.
 *
 * Every episode ends with a newline. The characters are chosen so that none has two roles: keys
 * are lowercase a-h, values digits, facts U+00C0-U+010F, brackets' letters x-z.
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

const KEYS = 'abcdefgh';
const VALUES = '0123456789';
/** Facts are one token each: key k with value v is U+00C0 + 10k + v (À, Á, ...), 80 characters. */
const FACT_BASE = 0xc0;
const FACTS = Array.from({ length: KEYS.length * VALUES.length }, (_, i) => String.fromCharCode(FACT_BASE + i)).join('');
const OPENERS = '([{<';
const CLOSERS = ')]}>';
const LETTERS = 'xyz';
const SEPARATOR = '\n';

/** The tokens an answer can be, per task: a prediction is the most likely of these (chance is 1 / their number). */
export const ANSWER_ALPHABETS: Readonly<Record<ProbeTask, string>> = { recall: VALUES, brackets: CLOSERS };

/** Every character a task's text can hold, so that a char tokenizer built from any corpus of it knows them all. */
export const TASK_ALPHABETS: Readonly<Record<ProbeTask, string>> = {
  recall: KEYS + VALUES + FACTS + SEPARATOR,
  brackets: OPENERS + CLOSERS + LETTERS + SEPARATOR,
};

/** The shortest distance each task can express. */
export const MIN_DISTANCE: Readonly<Record<ProbeTask, number>> = { recall: 2, brackets: 2 };

export type Random = () => number;

function pick(alphabet: string, random: Random): string {
  return alphabet[Math.floor(random() * alphabet.length)]!;
}

export function generateEpisode(task: ProbeTask, distance: number, random: Random): Episode {
  if (!Number.isInteger(distance) || distance < MIN_DISTANCE[task]) {
    throw new FerryError('invalid_flag', `A ${task} episode needs a whole distance of at least ${MIN_DISTANCE[task]}, got ${distance}.`);
  }
  return task === 'recall' ? recallEpisode(distance, random) : bracketsEpisode(distance, random);
}

/** Key i is drawn with weight 1 / (i + 1) (Zipf): common keys recur within a few tokens, rare ones a hundred or more later. */
const KEY_WEIGHTS = [...KEYS].map((_, i) => 1 / (i + 1));

function pickKey(random: Random, allowed: (key: number) => boolean): number {
  const keys = [...KEYS].map((_, key) => key).filter(allowed);
  let left = random() * keys.reduce((sum, key) => sum + KEY_WEIGHTS[key]!, 0);
  for (const key of keys) {
    left -= KEY_WEIGHTS[key]!;
    if (left < 0) return key;
  }
  return keys.at(-1)!;
}

/** The one-token fact "key k has value v". */
function fact(key: number, value: number): string {
  return String.fromCharCode(FACT_BASE + key * VALUES.length + value);
}

/** Each key's value for one episode: the table a model must hold. */
function drawValues(random: Random): number[] {
  return [...KEYS].map(() => Math.floor(random() * VALUES.length));
}

/**
 * Items of a recall episode under one table: a fact (one token) or, for a key whose fact came
 * already, a question (the key, then its value: two tokens). `allowed` rules keys out.
 */
function recallItem(values: number[], known: Set<number>, random: Random, allowed: (key: number) => boolean, room: number): string {
  const askable = [...known].filter(allowed);
  if (room >= 2 && askable.length > 0 && random() < 0.5) {
    const key = pickKey(random, (k) => known.has(k) && allowed(k));
    return `${KEYS[key]}${VALUES[values[key]!]}`;
  }
  const key = pickKey(random, allowed);
  known.add(key);
  return fact(key, values[key]!);
}

/**
 * A recall training episode: `tokens` tokens of facts and questions under one random table, keys
 * drawn Zipf, then a newline. Each question's value comes from the key's last fact or question,
 * at whatever distance that was: common keys a few tokens back, rare ones a hundred or more.
 */
export function recallStream(tokens: number, random: Random): string {
  const values = drawValues(random);
  const known = new Set<number>();
  let text = '';
  while (text.length < tokens) text += recallItem(values, known, random, () => true, tokens - text.length);
  return `${text}${SEPARATOR}`;
}

/**
 * A scored recall episode: the fact of key K, items of other keys for distance - 2 tokens, then K
 * asked and its value (the answer), then a newline. It starts at the fact, so that the scored
 * window is exactly `distance` long and a Transformer of context W is scored up to distance W. K occurs nowhere else (neither
 * in a fact nor asked), so its value can only come from the fact exactly `distance` tokens back.
 */
function recallEpisode(distance: number, random: Random): Episode {
  const values = drawValues(random);
  const key = Math.floor(random() * KEYS.length);
  const others = (k: number) => k !== key;
  const known = new Set<number>();
  const fill = (tokens: number) => {
    let text = '';
    while (text.length < tokens) text += recallItem(values, known, random, others, tokens - text.length);
    return text;
  };
  const text = `${fact(key, values[key]!)}${fill(distance - 2)}${KEYS[key]}${VALUES[values[key]!]}${SEPARATOR}`;
  return { text, answer: distance, source: 0 };
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
 * One episode of training text. recall: a stream twice as long as the longest distance, so that
 * windows hold every distance up to it; brackets: one episode at a log-uniform distance.
 */
export function trainingEpisode(task: ProbeTask, range: readonly [number, number], random: Random): string {
  return task === 'recall' ? recallStream(2 * range[1], random) : generateEpisode(task, logUniformDistance(range, random), random).text;
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
