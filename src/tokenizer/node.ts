import { randomBytes } from 'node:crypto';
import { readFile, rename, rm, writeFile } from 'node:fs/promises';
import { FerryError } from '../errors.ts';
import { loadTokenizer } from './load.ts';
import type { Tokenizer } from './types.ts';

/** Reads a tokenizer.json file (Node only). */
export async function readTokenizerFile(path: string): Promise<Tokenizer> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    const missing = (error as NodeJS.ErrnoException).code === 'ENOENT';
    throw new FerryError(missing ? 'tokenizer_not_found' : 'tokenizer_unreadable', `cannot read tokenizer file ${path}: ${missing ? 'it does not exist' : (error as Error).message}`, {
      hint: 'Give the tokenizer.json of a ferry checkpoint or export.',
      cause: error,
    });
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (error) {
    throw new FerryError('tokenizer_invalid', `${path} is not JSON: ${(error as Error).message}`, {
      hint: 'The file is damaged; retrain or restore the tokenizer.',
      cause: error,
    });
  }
  try {
    return loadTokenizer(json);
  } catch (error) {
    if (error instanceof FerryError) throw new FerryError(error.code, `${path}: ${error.message}`, { hint: error.hint, status: error.status, cause: error });
    throw error;
  }
}

/** Writes tokenizer.json atomically: a reader never sees half a file (Node only). */
export async function writeTokenizerFile(path: string, tokenizer: Tokenizer): Promise<void> {
  const temp = `${path}.${randomBytes(6).toString('hex')}.tmp`;
  try {
    await writeFile(temp, JSON.stringify(tokenizer.toJSON()));
    await rename(temp, path);
  } catch (error) {
    await rm(temp, { force: true });
    throw error;
  }
}
