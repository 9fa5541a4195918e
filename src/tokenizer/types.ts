/** The contract every stage codes against (docs/FORMATS.md). */
export interface Tokenizer {
  readonly kind: TokenizerKind;
  readonly vocabSize: number;
  /** Id of `<|endoftext|>` when the vocabulary has it. */
  readonly eosId: number | undefined;
  encode(text: string): number[];
  decode(ids: readonly number[]): string;
  /** The UTF-8 bytes a token stands for, so that a stream of ids can be decoded piece by piece. */
  tokenBytes(id: number): Uint8Array;
  /** The Hugging Face tokenizer.json object. */
  toJSON(): object;
}

export type TokenizerKind = 'char' | 'word' | 'bpe';
export const TOKENIZER_KINDS: readonly TokenizerKind[] = ['char', 'word', 'bpe'];

export const EOS_TOKEN = '<|endoftext|>';
export const UNK_TOKEN = '<unk>';
