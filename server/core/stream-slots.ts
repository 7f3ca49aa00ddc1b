import { resourceExhausted } from "./errors.js";

/** How soon a refused caller may try again: a slot frees whenever another stream ends. */
const RETRY_AFTER_MS = 1000;

export interface StreamSlotsOptions {
  /** The streams, as callers know them (e.g. "WatchSession"). */
  readonly name: string;
  /** What a key is (e.g. "session"). */
  readonly keyName: string;
  /** Most streams open at once on this instance. */
  readonly total: number;
  /** Most streams open at once on one key. */
  readonly perKey: number;
}

/** Bounds long-lived streams, in all and per key, so that past the bound new ones are refused rather than piling up. */
export interface StreamSlots {
  /**
   * Takes a slot for a stream on `key` and returns the function that gives it back (once, however
   * often it is called). Throws RESOURCE_EXHAUSTED, with a retry delay, when the instance or the key is full.
   */
  acquire(key: string): () => void;
}

export function createStreamSlots(options: StreamSlotsOptions): StreamSlots {
  const perKey = new Map<string, number>();
  let total = 0;
  return {
    acquire(key) {
      if (total >= options.total) {
        throw resourceExhausted(`${options.total} ${options.name} streams are open on this instance, the most it allows`, RETRY_AFTER_MS);
      }
      const held = perKey.get(key) ?? 0;
      if (held >= options.perKey) {
        throw resourceExhausted(`${options.perKey} ${options.name} streams are open on ${options.keyName} ${JSON.stringify(key)}, the most it allows`, RETRY_AFTER_MS);
      }
      total++;
      perKey.set(key, held + 1);
      let released = false;
      return () => {
        if (released) return;
        released = true;
        total--;
        const left = (perKey.get(key) ?? 1) - 1;
        if (left === 0) perKey.delete(key);
        else perKey.set(key, left);
      };
    },
  };
}
