/**
 * From token ids to the text a client sees, one token at a time: UTF-8 bytes are decoded
 * incrementally (a character split over two byte-level tokens is emitted once it is whole) and
 * stop strings are matched across token boundaries (text that could still start a stop string
 * is held back until it cannot).
 */

export interface TokenBytes {
  tokenBytes(id: number): Uint8Array;
}

const LONE_SURROGATE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g;

/**
 * The text with each lone surrogate (valid in JSON, not in UTF-8) as U+FFFD, which is what its
 * UTF-8 encoding turns it into: the text the model reads, and so the text to echo back.
 */
export function wellFormed(text: string): string {
  return text.replace(LONE_SURROGATE, '\ufffd');
}

export class Utf8Stream {
  readonly #decoder = new TextDecoder('utf-8', { fatal: false });

  /** The characters completed by these bytes; an unfinished sequence stays buffered. */
  push(bytes: Uint8Array): string {
    return this.#decoder.decode(bytes, { stream: true });
  }

  /** Whatever is left; an unfinished sequence becomes U+FFFD. */
  end(): string {
    return this.#decoder.decode();
  }
}

export interface StopResult {
  /** Text that can be released now. */
  text: string;
  /** Set when a stop string matched; `text` ends just before it. */
  stopped: boolean;
}

export class StopMatcher {
  readonly #stops: readonly string[];
  #held = '';

  constructor(stops: readonly string[]) {
    this.#stops = stops.filter((s) => s.length > 0);
  }

  push(text: string): StopResult {
    const pending = this.#held + text;
    let cut = -1;
    for (const stop of this.#stops) {
      const at = pending.indexOf(stop);
      if (at >= 0 && (cut < 0 || at < cut)) cut = at;
    }
    if (cut >= 0) {
      this.#held = '';
      return { text: pending.slice(0, cut), stopped: true };
    }
    const hold = this.#longestPartialSuffix(pending);
    this.#held = pending.slice(pending.length - hold);
    return { text: pending.slice(0, pending.length - hold), stopped: false };
  }

  /** The held-back tail, released when generation ends without a match. */
  end(): string {
    const rest = this.#held;
    this.#held = '';
    return rest;
  }

  #longestPartialSuffix(text: string): number {
    let longest = 0;
    for (const stop of this.#stops) {
      for (let n = Math.min(stop.length - 1, text.length); n > longest; n--) {
        if (text.endsWith(stop.slice(0, n))) {
          longest = n;
          break;
        }
      }
    }
    return longest;
  }
}

/** One generated or echoed token, as OpenAI's completion `logprobs` lists it. */
export interface TokenLogprob {
  token: string;
  logprob: number | null;
  top: Record<string, number> | null;
  /** Offset of the token's first character in the choice's text. */
  offset: number;
}

export interface TextDelta {
  text: string;
  logprobs: TokenLogprob[];
}

/**
 * Per choice: bytes -> characters -> stop strings, carrying each token's logprob entry along so
 * that an entry is released in the same chunk as the text that ends with it.
 */
export class TextAssembler {
  readonly #bytes: TokenBytes;
  readonly #utf8 = new Utf8Stream();
  readonly #stop: StopMatcher;
  #decoded = 0;
  #released = 0;
  #pending: { end: number; entry: TokenLogprob }[] = [];
  #stopped = false;

  constructor(bytes: TokenBytes, stops: readonly string[], startOffset = 0) {
    this.#bytes = bytes;
    this.#stop = new StopMatcher(stops);
    this.#decoded = startOffset;
    this.#released = startOffset;
  }

  get stopped(): boolean {
    return this.#stopped;
  }

  push(id: number, entry?: Omit<TokenLogprob, 'offset'>): TextDelta {
    if (this.#stopped) return { text: '', logprobs: [] };
    const offset = this.#decoded;
    const text = this.#utf8.push(this.#bytes.tokenBytes(id));
    this.#decoded += text.length;
    if (entry) this.#pending.push({ end: this.#decoded, entry: { ...entry, offset } });
    return this.#release(this.#stop.push(text));
  }

  end(): TextDelta {
    if (this.#stopped) return { text: '', logprobs: [] };
    const text = this.#utf8.end();
    this.#decoded += text.length;
    const tail = this.#stop.push(text);
    if (tail.stopped) return this.#release(tail);
    return this.#release({ text: tail.text + this.#stop.end(), stopped: false }, true);
  }

  #release(result: StopResult, final = false): TextDelta {
    this.#released += result.text.length;
    this.#stopped = result.stopped;
    const logprobs: TokenLogprob[] = [];
    while (this.#pending.length) {
      const next = this.#pending[0]!;
      const whole = next.end <= this.#released || (final && !result.stopped);
      // After a stop, tokens that began before the cut still count; the rest are dropped.
      const partOfCut = result.stopped && next.entry.offset < this.#released;
      if (!whole && !partOfCut) break;
      logprobs.push(next.entry);
      this.#pending.shift();
    }
    if (result.stopped) this.#pending = [];
    return { text: result.text, logprobs };
  }
}
