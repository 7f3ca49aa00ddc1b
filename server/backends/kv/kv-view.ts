import { invalidArgument } from "../../core/errors.js";
import type { KvStore, TtlOptions } from "./kv-store.js";

/** Longest key, prefix included, in UTF-8 bytes (the SQL table's key column). */
export const MAX_KEY_BYTES = 1024;
/** Longest set member in UTF-8 bytes. */
export const MAX_MEMBER_BYTES = 512;

/**
 * What an implementation provides: every operation on full keys, already prefixed and checked, so
 * each implementation holds only its storage logic and every one checks arguments alike.
 */
export type KvOperations = Omit<KvStore, "name" | "kind" | "prefix" | "scoped" | "ping" | "close" | "setAdd" | "setRemove"> & {
  setAdd(key: string, members: readonly string[], options?: TtlOptions): Promise<void>;
  setRemove(key: string, members: readonly string[]): Promise<number>;
};

/** The backend side of a store: what it is, how to ping it, and what closing the root view releases. */
export interface KvHandle {
  readonly kind: string;
  ping(): Promise<void>;
  close(): Promise<void>;
}

/** The root view of a store (prefix ""); `scoped` views share its operations and never close them. */
export function createKvView(ops: KvOperations, handle: KvHandle, prefix = ""): KvStore {
  const full = (key: string) => checkedKey(prefix, key);
  return {
    name: "kv",
    kind: handle.kind,
    prefix,
    ping: () => handle.ping(),
    close: () => (prefix === "" ? handle.close() : Promise.resolve()),
    // async, so that a refused argument rejects like every other failure instead of throwing.
    get: async (key) => ops.get(full(key)),
    getMany: async (keys) => (keys.length === 0 ? [] : ops.getMany(keys.map(full))),
    set: async (key, value, options) => ops.set(full(key), checkedValue(value), checkedTtl(options)),
    setIfAbsent: async (key, value, options) => ops.setIfAbsent(full(key), checkedValue(value), checkedTtl(options)),
    expire: async (key, ttlMs) => ops.expire(full(key), requireTtl(ttlMs)),
    delete: async (...keys) => (keys.length === 0 ? 0 : ops.delete(...keys.map(full))),
    incrBy: async (key, amount, options) => ops.incrBy(full(key), checkedInteger("amount", amount, -Number.MAX_SAFE_INTEGER), checkedTtl(options)),
    consume: async (key, amount, limit, ttlMs) =>
      ops.consume(full(key), checkedInteger("amount", amount, 0), checkedInteger("limit", limit, 0), ttlMs === undefined ? undefined : requireTtl(ttlMs)),
    take: async (bucket, ratePerSecond, burst) => ops.take(full(bucket), checkedRate(ratePerSecond), checkedBurst(burst)),
    setAdd: async (key, members, options) => ops.setAdd(full(key), checkedMembers(members), checkedTtl(options)),
    setRemove: async (key, members) => ops.setRemove(full(key), checkedMembers(members)),
    setMembers: async (key) => (await ops.setMembers(full(key))).sort(compareUtf8),
    scoped: (more) => {
      if (typeof more !== "string" || more === "") throw invalidArgument([{ field: "prefix", description: "must be a non-empty string" }]);
      return createKvView(ops, handle, checkedKey(prefix, more));
    },
  };
}

function checkedKey(prefix: string, key: string): string {
  if (typeof key !== "string" || key === "") throw invalidArgument([{ field: "key", description: "must be a non-empty string" }]);
  const full = prefix + key;
  if (Buffer.byteLength(full) > MAX_KEY_BYTES) {
    throw invalidArgument([{ field: "key", description: `must be at most ${MAX_KEY_BYTES} bytes of UTF-8, prefix included` }]);
  }
  return full;
}

function checkedValue(value: string): string {
  if (typeof value !== "string") throw invalidArgument([{ field: "value", description: "must be a string" }]);
  return value;
}

function checkedMembers(members: string | readonly string[]): readonly string[] {
  const list = typeof members === "string" ? [members] : members;
  for (const m of list) {
    if (typeof m !== "string" || m === "" || Buffer.byteLength(m) > MAX_MEMBER_BYTES) {
      throw invalidArgument([{ field: "member", description: `must be a non-empty string of at most ${MAX_MEMBER_BYTES} bytes` }]);
    }
  }
  return list;
}

function checkedTtl(options: TtlOptions | undefined): TtlOptions | undefined {
  return options?.ttlMs === undefined ? undefined : { ttlMs: requireTtl(options.ttlMs) };
}

function requireTtl(ttlMs: number): number {
  if (!Number.isSafeInteger(ttlMs) || ttlMs <= 0) throw invalidArgument([{ field: "ttl_ms", description: "must be a positive whole number of milliseconds" }]);
  return ttlMs;
}

function checkedInteger(field: string, n: number, min: number): number {
  if (!Number.isSafeInteger(n) || n < min) throw invalidArgument([{ field, description: `must be a whole number of at least ${min}` }]);
  return n;
}

function checkedRate(n: number): number {
  if (!Number.isFinite(n) || n <= 0) throw invalidArgument([{ field: "rate_per_second", description: "must be a positive number" }]);
  return n;
}

function checkedBurst(n: number): number {
  if (!Number.isFinite(n) || n < 1) throw invalidArgument([{ field: "burst", description: "must be at least 1" }]);
  return n;
}

/** Byte order of the UTF-8 encodings (what SQL's binary collations and Redis use), not UTF-16 order. */
function compareUtf8(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a), Buffer.from(b));
}
