/**
 * What a start-up has opened so far, to close in reverse order if it fails part-way: a failed
 * start-up must not leave database pools, Redis clients or timers behind.
 */
export interface Closers {
  /** Registers something just opened; `close` runs if the start-up fails after this point. */
  add(close: () => unknown): void;
  /** Closes everything added, newest first; one failure does not stop the others. */
  closeAll(): Promise<void>;
}

export function createClosers(): Closers {
  const stack: (() => unknown)[] = [];
  return {
    add: (close) => void stack.push(close),
    async closeAll() {
      while (stack.length > 0) {
        const close = stack.pop()!;
        await Promise.resolve()
          .then(close)
          .catch(() => undefined);
      }
    },
  };
}
