import { Counter, type Registry } from "prom-client";
import type { EventBus } from "../backends/events/event-bus.js";
import type { KvStore } from "../backends/kv/kv-store.js";
import type { Logger } from "../core/logger.js";

/**
 * A two-tier cache-aside layer for hot reads: a small in-process tier (short TTL) in front of the kv
 * store (shared by every instance, longer TTL), in front of the loader (the SQL store).
 *
 * - One load per key at a time on an instance: concurrent misses wait for the same loader.
 * - Absence is cached too, briefly (negative caching), so unknown ids do not reach the database each time.
 * - `invalidate` replaces the kv entry with a short "just written" marker, so a reader that loaded the
 *   old row before the write cannot put it back (fills only go where nothing is); then it asks every
 *   live instance, through the events role, to drop its in-process copy, and waits for their answers
 *   (bounded): a write is visible on every instance when it returns. An instance that may have
 *   missed an invalidation (its bus connection dropped) empties its in-process tier.
 * - With the kv store unreachable, reads go to the loader and nothing is cached in it; nothing fails.
 *
 * A library was considered (bentocache has this design: memory tier, L2 driver, bus invalidation,
 * single flight), but it is ESM-only (the service and its tests load CommonJS), and its bus and L2
 * drivers would have to be rewritten over the events and kv roles anyway, leaving little of it in use.
 */
export interface CacheOptions {
  readonly kv: KvStore;
  readonly events: EventBus;
  readonly registry: Registry;
  readonly logger: Logger;
  /** Lifetime of in-process entries, in ms (0: no in-process tier). */
  readonly localTtlMs: number;
  /** Most in-process entries (least recently used go first). */
  readonly localMaxEntries: number;
  /** Lifetime of a cached absence, in ms. */
  readonly negativeTtlMs: number;
  /** How long after a write no reader may refill the kv entry, in ms (longer than a load takes). */
  readonly holdOffMs: number;
  /** Longest wait for other instances to drop their copies after a write, in ms. */
  readonly invalidateTimeoutMs: number;
  /** Events topic of the invalidations. */
  readonly topic: string;
}

/** One kind of cached value (users, preferences...), under its own key prefix and TTL. */
export interface CacheNamespace<T> {
  /** The cached value of `id`, or what `load` finds (undefined: none), which is then cached. */
  get(id: string, load: () => Promise<T | undefined>): Promise<T | undefined>;
  /** Drops `ids` from every tier on every instance. */
  invalidate(...ids: string[]): Promise<void>;
}

export interface Cache {
  namespace<T>(name: string, options: { readonly prefix: string; readonly ttlMs: number }): CacheNamespace<T>;
  /** Starts answering other instances' invalidations. */
  start(): Promise<void>;
  stop(): Promise<void>;
}

/** How an entry is kept in the kv store: a value, an absence, or the marker a write leaves. */
type Stored<T> = { readonly v: T } | { readonly n: 1 } | { readonly w: 1 };
const HELD_OFF = JSON.stringify({ w: 1 });
/** Most keys remembered for invalidation while the kv store is unreachable. */
const PENDING_MAX = 100_000;

export function createCache(options: CacheOptions): Cache {
  const { kv, events, logger } = options;
  const hits = new Counter({
    name: "persistence_cache_hits_total",
    help: "Cache reads answered without the database, by cache and tier (local: in-process, kv: the kv store)",
    labelNames: ["cache", "tier"],
    registers: [options.registry],
  });
  const misses = new Counter({
    name: "persistence_cache_misses_total",
    help: "Cache reads that went to the database, by cache",
    labelNames: ["cache"],
    registers: [options.registry],
  });
  const invalidations = new Counter({
    name: "persistence_cache_invalidations_total",
    help: "Keys invalidated by writes, by cache",
    labelNames: ["cache"],
    registers: [options.registry],
  });
  const local = createLocalTier(options.localMaxEntries);
  // Loads in progress, by key: concurrent misses share one; an invalidation forgets it, so reads that
  // come after a write never wait for a load that began before it.
  const inFlight = new Map<string, Promise<unknown>>();
  const drop = (key: string) => {
    local.drop(key);
    inFlight.delete(key);
  };
  let kvDown = false;
  let stopResponder: (() => Promise<void>) | undefined;
  let stopGap: (() => void) | undefined;

  // Keys written while the kv store was unreachable: their kv entries may be stale once it is back,
  // so they are invalidated then, before the store serves reads again (bounded; past the bound, the
  // entries expire on their own).
  const pending = new Set<string>();
  const kvFailed = (err: unknown) => {
    if (!kvDown) logger.warn({ err: (err as Error).message }, "kv store unreachable: cached reads go to the database until it is back");
    kvDown = true;
  };
  /** After a kv call succeeded: true when the store was down until now (then the caller's read may be stale). */
  const kvBack = async (): Promise<boolean> => {
    if (!kvDown) return false;
    const keys = [...pending];
    try {
      await Promise.all(keys.map((key) => kv.set(key, HELD_OFF, { ttlMs: options.holdOffMs })));
    } catch (err) {
      kvFailed(err);
      return true;
    }
    for (const key of keys) pending.delete(key);
    kvDown = false;
    logger.info({ invalidated: keys.length }, "kv store reachable again: reads are cached again");
    return true;
  };

  return {
    namespace<T>(name: string, ns: { prefix: string; ttlMs: number }): CacheNamespace<T> {
      const keyOf = (id: string) => ns.prefix + id;

      const loadThrough = async (key: string, load: () => Promise<T | undefined>): Promise<T | undefined> => {
        const generation = local.generation(key);
        let fillKv = true;
        try {
          const fetched = await kv.get(key);
          // Just back from an outage: what it holds for this key may predate a write made meanwhile.
          const raw = (await kvBack()) ? HELD_OFF : fetched;
          if (raw !== undefined) {
            const stored = JSON.parse(raw) as Stored<T>;
            if ("v" in stored || "n" in stored) {
              hits.inc({ cache: name, tier: "kv" });
              const value = "v" in stored ? stored.v : undefined;
              local.set(key, value, generation, Math.min(options.localTtlMs, "n" in stored ? options.negativeTtlMs : options.localTtlMs));
              return value;
            }
            // Written a moment ago: a load elsewhere may have read the row before the write, so the kv
            // entry stays empty until the marker expires. This instance's copy is safe: an invalidation
            // arriving while it loads changes the key's generation, and then nothing is kept.
            fillKv = false;
          }
        } catch (err) {
          kvFailed(err);
          fillKv = false;
        }
        misses.inc({ cache: name });
        const value = await load();
        if (fillKv) {
          const stored: Stored<T> = value === undefined ? { n: 1 } : { v: value };
          try {
            await kv.setIfAbsent(key, JSON.stringify(stored), { ttlMs: value === undefined ? options.negativeTtlMs : ns.ttlMs });
          } catch (err) {
            kvFailed(err);
          }
        }
        local.set(key, value, generation, Math.min(options.localTtlMs, value === undefined ? options.negativeTtlMs : options.localTtlMs));
        return value;
      };

      return {
        async get(id, load) {
          const key = keyOf(id);
          const cached = local.get(key);
          if (cached) {
            hits.inc({ cache: name, tier: "local" });
            return cached.value as T | undefined;
          }
          let pending = inFlight.get(key) as Promise<T | undefined> | undefined;
          if (!pending) {
            const started: Promise<T | undefined> = loadThrough(key, load).finally(() => {
              if (inFlight.get(key) === started) inFlight.delete(key);
            });
            inFlight.set(key, started);
            pending = started;
          }
          return pending;
        },
        async invalidate(...ids) {
          if (ids.length === 0) return;
          const keys = ids.map(keyOf);
          invalidations.inc({ cache: name }, keys.length);
          for (const key of keys) drop(key);
          try {
            await Promise.all(keys.map((key) => kv.set(key, HELD_OFF, { ttlMs: options.holdOffMs })));
          } catch (err) {
            kvFailed(err);
            for (const key of keys) if (pending.size < PENDING_MAX) pending.add(key);
          }
          if (options.localTtlMs === 0) return;
          try {
            const { missing } = await events.gather(options.topic, { keys }, options.invalidateTimeoutMs);
            if (missing.length > 0) logger.warn({ missing }, "instances did not confirm a cache invalidation in time; their copies expire on their own");
          } catch (err) {
            logger.warn({ err: (err as Error).message }, "cache invalidation not broadcast; other instances' copies expire on their own");
          }
        },
      };
    },
    async start() {
      if (options.localTtlMs === 0) return;
      stopResponder = await events.respond(options.topic, (request) => {
        const { keys } = request.json<{ keys?: unknown }>();
        if (Array.isArray(keys)) for (const key of keys) if (typeof key === "string") drop(key);
        return { dropped: Array.isArray(keys) ? keys.length : 0 };
      });
      stopGap = events.onGap(() => {
        local.clear();
        inFlight.clear();
      });
    },
    async stop() {
      stopGap?.();
      await stopResponder?.();
    },
  };
}

/**
 * The in-process tier: entries with their own expiry, least recently used dropped past `maxEntries`.
 * Each key has a generation that a drop advances, so a load that began before an invalidation
 * cannot store what it read.
 */
function createLocalTier(maxEntries: number) {
  const entries = new Map<string, { value: unknown; expiresAt: number }>();
  const generations = new Map<string, number>();
  let epoch = 0;
  return {
    get(key: string): { value: unknown } | undefined {
      const entry = entries.get(key);
      if (!entry) return undefined;
      if (entry.expiresAt <= performance.now()) {
        entries.delete(key);
        return undefined;
      }
      entries.delete(key); // re-inserted last: the map's order is least recently used first
      entries.set(key, entry);
      return entry;
    },
    generation: (key: string) => `${epoch}:${generations.get(key) ?? 0}`,
    set(key: string, value: unknown, generation: string, ttlMs: number) {
      if (ttlMs <= 0 || generation !== `${epoch}:${generations.get(key) ?? 0}`) return;
      entries.delete(key);
      entries.set(key, { value, expiresAt: performance.now() + ttlMs });
      if (entries.size > maxEntries) entries.delete(entries.keys().next().value as string);
    },
    drop(key: string) {
      entries.delete(key);
      generations.set(key, (generations.get(key) ?? 0) + 1);
      // Generations only need to outlive loads in progress; forget them in bulk rather than one by one.
      if (generations.size > maxEntries * 4) {
        generations.clear();
        epoch++;
      }
    },
    clear() {
      entries.clear();
      generations.clear();
      epoch++;
    },
  };
}
