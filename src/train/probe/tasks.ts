/**
 * The synthetic tasks of `ferry probe`: episodes of text in which one token (the answer) can only
 * be predicted from a token exactly `distance` tokens before it. Everything else in an episode is
 * noise or structure, so a model's accuracy at the answers measures how far back it can use its
 * context. Episodes are drawn from mulberry32 with a seed: the same seed gives the same text.
 *
 * - recall (associative recall): four key/value pairs are stored, noise follows, then the keys
 *   come back in a random order, each to be followed by its value. The first key to return is
 *   exactly `distance` tokens after its first sighting, so its answer is `distance` tokens after
 *   the value it copies. Several pairs, asked out of order, so that the key matters: the model
 *   must look up which value, not replay the digits in the order it saw them.
 * - brackets (bracket matching): an opening bracket, a balanced filler of brackets and letters,
 *   and the closer of the first bracket, `distance` tokens after it. The filler nests other
 *   brackets, so the answer is the one that matches the bracket still open at depth 1.
 *
 * Every episode ends with a newline. The characters are chosen so that none has two roles: keys
 * are lowercase a-h, values digits, recall's noise uppercase letters, brackets' letters x-z.
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
const NOISE = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ';
const OPENERS = '([{<';
const CLOSERS = ')]}>';
const LETTERS = 'xyz';
const SEPARATOR = '\n';

/** The tokens an answer can be, per task: a prediction is the most likely of these (chance is 1 / their number). */
export const ANSWER_ALPHABETS: Readonly<Record<ProbeTask, string>> = { recall: VALUES, brackets: CLOSERS };

/** Every character a task's text can hold, so that a char tokenizer built from any corpus of it knows them all. */
export const TASK_ALPHABETS: Readonly<Record<ProbeTask, string>> = {
  recall: KEYS + VALUES + NOISE + SEPARATOR,
  brackets: OPENERS + CLOSERS + LETTERS + SEPARATOR,
};

/** The shortest distance each task can express (recall stores four pairs before the noise). */
export const MIN_DISTANCE: Readonly<Record<ProbeTask, number>> = { recall: 8, brackets: 2 };

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

/**
 * K1 V1 .. K4 V4 noise.. Q1 A1 .. Q4 A4 \n: four pairs stored, then all four keys asked back in a
 * random order, each followed by its value. The first question Q1 comes exactly `distance` after
 * its key's first sighting (the noise is as long as that takes); it is the episode's scored
 * answer. The other three make training denser (four answers an episode) at nearby distances.
 */
function recallEpisode(distance: number, random: Random): Episode {
  const keys = shuffled(KEYS, random).slice(0, PAIRS);
  const values = keys.map(() => pick(VALUES, random));
  const order = shuffled([0, 1, 2, 3], random);
  const stored = 2 * order[0]!; // index of the first question's key in the stored pairs
  const query = stored + distance;
  let text = keys.map((key, i) => `${key}${values[i]}`).join('');
  while (text.length < query) text += pick(NOISE, random);
  text += `${order.map((i) => `${keys[i]}${values[i]}`).join('')}${SEPARATOR}`;
  return { text, answer: query + 1, source: stored + 1 };
}

const PAIRS = 4;

/** A Fisher-Yates shuffle of the items (a copy). */
function shuffled<T>(items: Iterable<T>, random: Random): T[] {
  const copy = [...items];
  for (let i = copy.length - 1; i > 0; i -= 1) {
    const j = Math.floor(random() * (i + 1));
    [copy[i], copy[j]] = [copy[j]!, copy[i]!];
  }
  return copy;
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
 * A training corpus: episodes at distances drawn log-uniformly from `range`, until it holds at
 * least `characters` characters. It starts with a line of the task's whole alphabet, so that the
 * char tokenizer built from it can encode any episode of the task, whatever the draw.
 */
export function generateCorpus(task: ProbeTask, range: readonly [number, number], characters: number, seed: number): string {
  const random = mulberry32(seed);
  const parts = [`${TASK_ALPHABETS[task].replace(SEPARATOR, '')}${SEPARATOR}`];
  let length = parts[0]!.length;
  while (length < characters) {
    const episode = generateEpisode(task, logUniformDistance(range, random), random).text;
    parts.push(episode);
    length += episode.length;
  }
  return parts.join('');
}
