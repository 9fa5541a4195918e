import { z } from 'zod';
import { FerryError } from '../errors.ts';
import { createBpeTokenizer } from './bpe.ts';
import { createCharTokenizer } from './char.ts';
import type { Tokenizer } from './types.ts';
import type { SpecialToken } from './vocab.ts';
import { createWordTokenizer } from './word.ts';

const addedTokenSchema = z.object({ id: z.number().int().nonnegative(), content: z.string().min(1) });
const mergeSchema = z.union([z.string(), z.tuple([z.string(), z.string()])]);
const typed = z.object({ type: z.string() }).loose();

const fileSchema = z.object({
  added_tokens: z.array(addedTokenSchema).default([]),
  normalizer: typed.nullable().default(null),
  pre_tokenizer: typed.nullable().default(null),
  model: z.discriminatedUnion('type', [
    z.object({
      type: z.literal('BPE'),
      vocab: z.unknown(),
      merges: z.array(mergeSchema).default([]),
      unk_token: z.string().nullable().default(null),
      byte_fallback: z.boolean().nullable().default(false),
      continuing_subword_prefix: z.string().nullable().default(null),
      end_of_word_suffix: z.string().nullable().default(null),
    }),
    z.object({ type: z.literal('WordLevel'), vocab: z.unknown(), unk_token: z.string() }),
  ]),
});

/**
 * A tokenizer from a parsed Hugging Face tokenizer.json: the char, word and byte-level BPE files
 * ferry writes, and GPT-2 style byte-level BPE files written by other tools.
 */
export function loadTokenizer(json: unknown): Tokenizer {
  const parsed = fileSchema.safeParse(json);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    const where = issue.path.length > 0 ? issue.path.join('.') : 'the top level';
    throw invalid(`${where}: ${issue.message}`);
  }
  const file = parsed.data;
  if (file.normalizer !== null) unsupported(`normalizer "${file.normalizer.type}"`);
  const specials: SpecialToken[] = file.added_tokens.map(({ id, content }) => ({ id, content }));
  const tokens = tokensById(file.model.vocab, specials);

  if (file.model.type === 'WordLevel') {
    const split = file.pre_tokenizer as { type: string; pattern?: { Regex?: unknown }; behavior?: unknown } | null;
    if (split?.type !== 'Split' || typeof split.pattern?.Regex !== 'string' || split.behavior !== 'Isolated') {
      unsupported('a WordLevel model without an isolating Split regex pre-tokenizer');
    }
    if (!tokens.includes(file.model.unk_token)) throw invalid(`model.unk_token "${file.model.unk_token}" is not in the vocabulary`);
    checkPattern(split.pattern.Regex as string);
    return createWordTokenizer({ tokens, specials, unkToken: file.model.unk_token, pattern: split.pattern.Regex as string });
  }

  const model = file.model;
  if (model.continuing_subword_prefix || model.end_of_word_suffix) unsupported('BPE with subword prefixes or suffixes');
  const preTokenizer = file.pre_tokenizer;
  if (preTokenizer === null) {
    if (model.merges.length > 0) unsupported('BPE merges without a ByteLevel pre-tokenizer');
    if (model.unk_token !== null && !tokens.includes(model.unk_token)) throw invalid(`model.unk_token "${model.unk_token}" is not in the vocabulary`);
    return createCharTokenizer({ tokens, specials, byteFallback: model.byte_fallback === true, unkToken: model.unk_token });
  }
  if (preTokenizer.type !== 'ByteLevel') unsupported(`pre_tokenizer "${preTokenizer.type}"`);
  if (preTokenizer.add_prefix_space === true) unsupported('a ByteLevel pre-tokenizer with add_prefix_space');
  if (preTokenizer.use_regex === false) unsupported('a ByteLevel pre-tokenizer without its regex');
  return createBpeTokenizer({ tokens, specials, merges: model.merges.map(parseMerge) });
}

/** Token strings indexed by id; HF lists added tokens both in the vocabulary and apart from it. */
function tokensById(vocab: unknown, specials: readonly SpecialToken[]): string[] {
  if (typeof vocab !== 'object' || vocab === null || Array.isArray(vocab)) throw invalid('model.vocab must be an object of token -> id');
  const tokens: string[] = [];
  for (const [token, id] of Object.entries(vocab)) {
    if (!Number.isInteger(id) || (id as number) < 0) throw invalid(`model.vocab["${token}"] is ${JSON.stringify(id)}, not a token id`);
    if (tokens[id as number] !== undefined) throw invalid(`model.vocab gives id ${id} to both "${tokens[id as number]}" and "${token}"`);
    tokens[id as number] = token;
  }
  for (const { id, content } of specials) {
    if (tokens[id] !== undefined && tokens[id] !== content) {
      throw invalid(`added token ${id} is "${content}" but the vocabulary has "${tokens[id]}" there`);
    }
    tokens[id] = content;
  }
  if (tokens.length === 0) throw invalid('the vocabulary is empty');
  for (let id = 0; id < tokens.length; id++) {
    if (tokens[id] === undefined) throw invalid(`token ids must run from 0 to ${tokens.length - 1} without gaps; ${id} is missing`);
  }
  return tokens;
}

function parseMerge(merge: z.infer<typeof mergeSchema>, rank: number): [string, string] {
  if (typeof merge !== 'string') return [merge[0], merge[1]];
  const parts = merge.split(' ');
  if (parts.length !== 2) throw invalid(`model.merges[${rank}] "${merge}" is not two tokens separated by one space`);
  return [parts[0]!, parts[1]!];
}

function checkPattern(pattern: string): void {
  try {
    new RegExp(pattern, 'gu');
  } catch {
    unsupported(`the pre-tokenizer regex ${JSON.stringify(pattern)} (not a JavaScript regular expression)`);
  }
}

function invalid(problem: string): FerryError {
  return new FerryError('tokenizer_invalid', `tokenizer.json is invalid: ${problem}`, {
    hint: 'Use a tokenizer.json written by ferry or by Hugging Face tokenizers; retrain the tokenizer if the file is damaged.',
  });
}

function unsupported(feature: string): never {
  throw new FerryError('tokenizer_unsupported', `tokenizer.json uses ${feature}, which ferry does not support`, {
    hint: 'ferry reads char, word-level and GPT-2 style byte-level BPE tokenizers; train one with ferry train --tokenizer.',
  });
}
