/**
 * A one-producer, one-consumer async queue: the scheduler pushes events as steps finish, the
 * HTTP handler iterates them. Leaving the loop early (client gone) runs `onCancel`.
 */
export class Channel<T> implements AsyncIterable<T> {
  readonly #items: T[] = [];
  #waiting: ((result: IteratorResult<T>) => void) | undefined;
  #failWaiting: ((error: unknown) => void) | undefined;
  #closed = false;
  #error: unknown;
  readonly #onCancel: () => void;

  constructor(onCancel: () => void) {
    this.#onCancel = onCancel;
  }

  push(item: T): void {
    if (this.#closed) return;
    if (this.#waiting) {
      const resolve = this.#waiting;
      this.#waiting = this.#failWaiting = undefined;
      resolve({ value: item, done: false });
    } else {
      this.#items.push(item);
    }
  }

  close(error?: unknown): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#error = error;
    if (this.#waiting) {
      const resolve = this.#waiting;
      const reject = this.#failWaiting!;
      this.#waiting = this.#failWaiting = undefined;
      if (error === undefined) resolve({ value: undefined, done: true });
      else reject(error);
    }
  }

  /** An item pushed and not yet read, without waiting; undefined when there is none. */
  take(): T | undefined {
    return this.#items.shift();
  }

  /** Closed without an error, and every item read. */
  get drained(): boolean {
    return this.#closed && this.#error === undefined && this.#items.length === 0;
  }

  [Symbol.asyncIterator](): AsyncIterator<T> {
    return {
      next: () => {
        if (this.#items.length) return Promise.resolve({ value: this.#items.shift()!, done: false });
        if (this.#closed) return this.#error === undefined ? Promise.resolve({ value: undefined, done: true }) : Promise.reject(this.#error);
        return new Promise((resolve, reject) => {
          this.#waiting = resolve;
          this.#failWaiting = reject;
        });
      },
      return: () => {
        if (!this.#closed) {
          this.#closed = true;
          this.#waiting?.({ value: undefined, done: true });
          this.#waiting = this.#failWaiting = undefined;
          this.#onCancel();
        }
        return Promise.resolve({ value: undefined, done: true });
      },
    };
  }
}
