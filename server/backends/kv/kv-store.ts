import type { Backend } from "../backend.js";

/**
 * The `kv` role: small values with expiry, atomic counters, token buckets and small sets, shared by
 * every instance that opens the same store. Implementations: a SQL table (the embedded default, on
 * SQLite or MySQL/MariaDB) and Redis (standalone or Cluster).
 *
 * Keys are non-empty UTF-8 strings of at most 1,024 bytes including the view's prefix, compared byte
 * for byte. A key holds one kind of item: a value (counters and buckets are values), or a set; using
 * one kind's operations on a key of the other kind fails with FAILED_PRECONDITION or has no effect.
 * Backend failures reject with UNAVAILABLE (with a retry delay); invalid arguments with INVALID_ARGUMENT.
 */
export interface KvStore extends Backend {
  readonly name: "kv";
  /** The prefix this view puts before every key ("" for a store's root view). */
  readonly prefix: string;

  /** The value, or undefined when none is there or it expired. */
  get(key: string): Promise<string | undefined>;
  /** The values of `keys`, in the same order, undefined where there is none. */
  getMany(keys: readonly string[]): Promise<(string | undefined)[]>;
  /** Stores `value`, replacing any, kept `ttlMs` from now (or until deleted when no TTL is given). */
  set(key: string, value: string, options?: TtlOptions): Promise<void>;
  /** Stores `value` only when no live value is there; true when it was stored. */
  setIfAbsent(key: string, value: string, options?: TtlOptions): Promise<boolean>;
  /** Gives an existing value a new expiry `ttlMs` from now (a sliding timeout); false when there is none. */
  expire(key: string, ttlMs: number): Promise<boolean>;
  /** Removes whatever the keys hold (values and sets); resolves to how many keys held something. */
  delete(...keys: string[]): Promise<number>;

  /**
   * Adds `amount` (may be negative) to the integer counter at `key`, starting from 0, and returns the
   * new count. `ttlMs` is given to a counter that has no expiry yet, so the first increment starts a
   * fixed window; later increments do not extend it.
   */
  incrBy(key: string, amount: number, options?: TtlOptions): Promise<number>;
  /**
   * Atomically adds `amount` to the counter at `key` only if the count stays at or below `limit`, even
   * when many instances consume at once. `ttlMs` starts the window as for `incrBy`. `remaining` is what
   * is left under the limit afterwards (refused: what was left, unchanged).
   */
  consume(key: string, amount: number, limit: number, ttlMs?: number): Promise<ConsumeResult>;
  /**
   * Takes one token from the token bucket `bucket`: `ratePerSecond` tokens flow in, up to `burst`; a new
   * bucket starts full. Refused: how long until a token is there. The bucket expires once it would be
   * full again.
   */
  take(bucket: string, ratePerSecond: number, burst: number): Promise<TakeResult>;

  /**
   * Adds members (each at most 512 bytes) to the set at `key`. With `ttlMs`, each added member leaves
   * the set `ttlMs` from now on its own (adding it again renews it); without, it stays until removed.
   */
  setAdd(key: string, members: string | readonly string[], options?: TtlOptions): Promise<void>;
  /** Removes members; resolves to how many were there. */
  setRemove(key: string, members: string | readonly string[]): Promise<number>;
  /** The set's live members, sorted. Meant for small sets (a user's sessions, say). */
  setMembers(key: string): Promise<string[]>;

  /**
   * A view whose keys all start with `prefix` (e.g. `kv.scoped("users:")`), so callers cannot collide.
   * Views nest and share the store's connections: closing a view does nothing, closing the root closes all.
   */
  scoped(prefix: string): KvStore;
}

export interface TtlOptions {
  /** Milliseconds from now until the item expires (a positive integer); absent: kept until deleted. */
  readonly ttlMs?: number;
}

/** The outcome of `consume`. */
export interface ConsumeResult {
  readonly allowed: boolean;
  /** What is left under the limit (never negative). */
  readonly remaining: number;
}

/** The outcome of `take`. */
export interface TakeResult {
  readonly allowed: boolean;
  /** When refused, the milliseconds until a token is there; 0 when allowed. */
  readonly retryAfterMs: number;
}
