import { Registry } from "prom-client";
import { createEventHub, createMemoryEventBus } from "../../../server/backends/events/memory";
import type { KvStore } from "../../../server/backends/kv/kv-store";
import { createSqlKvStore } from "../../../server/backends/kv/sql";
import type { SqlBackend } from "../../../server/backends/sql/sql-store";
import { createLogger } from "../../../server/core/logger";
import { openServiceSql } from "../../../server/schema";
import { createCache, type Cache, type CacheOptions } from "../../../server/users/users.cache";
import { createSqlTarget, type SqlTarget } from "../../support/sql-targets";

/** The cache-aside layer on its own, over the SQL kv and an in-process bus shared by two "instances". */
describe("the users cache", () => {
  let target: SqlTarget;
  let store: SqlBackend;
  let kv: KvStore;
  const hub = createEventHub();
  const caches: Cache[] = [];
  const registries: Registry[] = [];

  const open = async (overrides: Partial<CacheOptions> = {}) => {
    const registry = new Registry();
    const cache = createCache({
      kv: kv.scoped(`c${caches.length}-${Date.now()}:`),
      events: createMemoryEventBus({ hub }),
      registry,
      logger: createLogger("silent"),
      localTtlMs: 10_000,
      localMaxEntries: 100,
      negativeTtlMs: 60_000,
      holdOffMs: 1000,
      invalidateTimeoutMs: 1000,
      topic: "users.cache.invalidate",
      ...overrides,
    });
    await cache.start();
    caches.push(cache);
    registries.push(registry);
    return { cache, registry };
  };
  const count = async (registry: Registry, name: string, labels: Record<string, string>) => {
    const metric = (await registry.getMetricsAsJSON()).find((m) => m.name === name);
    return (metric?.values ?? []).filter((v) => Object.entries(labels).every(([k, l]) => v.labels[k] === l)).reduce((sum, v) => sum + v.value, 0);
  };

  beforeAll(async () => {
    target = createSqlTarget("sqlite", "users_cache");
    store = await openServiceSql(target.url);
    kv = createSqlKvStore(store, { sweepIntervalMs: 0 });
  });
  afterAll(async () => {
    for (const c of caches) await c.stop();
    await kv.close();
    await store.close();
    await target.drop();
  });

  it("calls one loader per key however many reads miss at once", async () => {
    const { cache } = await open();
    const ns = cache.namespace<string>("t", { prefix: "a:", ttlMs: 60_000 });
    let loads = 0;
    const load = async () => {
      loads++;
      await new Promise((r) => setTimeout(r, 50));
      return "value";
    };
    const values = await Promise.all(Array.from({ length: 20 }, () => ns.get("k", load)));
    expect(values).toEqual(Array(20).fill("value"));
    expect(loads).toBe(1);
  });

  it("remembers an absence, so unknown keys reach the loader once", async () => {
    const { cache } = await open();
    const ns = cache.namespace<string>("t", { prefix: "b:", ttlMs: 60_000 });
    let loads = 0;
    for (let i = 0; i < 5; i++) expect(await ns.get("missing", async () => (loads++, undefined))).toBeUndefined();
    expect(loads).toBe(1);
  });

  it("counts hits per tier and misses", async () => {
    const { cache, registry } = await open();
    const ns = cache.namespace<number>("counted", { prefix: "c:", ttlMs: 60_000 });
    for (let i = 0; i < 4; i++) await ns.get("k", async () => 42);
    expect(await count(registry, "persistence_cache_misses_total", { cache: "counted" })).toBe(1);
    expect(await count(registry, "persistence_cache_hits_total", { cache: "counted", tier: "local" })).toBe(3);
  });

  it("serves from the kv store what another instance loaded, and drops both copies on a write anywhere", async () => {
    const shared = kv.scoped(`shared-${Date.now()}:`);
    const base = { kv: shared };
    const [a, b] = [await open(base), await open(base)];
    const nsA = a.cache.namespace<string>("s", { prefix: "d:", ttlMs: 60_000 });
    const nsB = b.cache.namespace<string>("s", { prefix: "d:", ttlMs: 60_000 });
    let row = "v1";
    let loads = 0;
    const load = async () => (loads++, row);
    expect(await nsA.get("k", load)).toBe("v1");
    expect(await nsB.get("k", load)).toBe("v1");
    expect(loads).toBe(1);
    expect(await count(b.registry, "persistence_cache_hits_total", { cache: "s", tier: "kv" })).toBe(1);
    row = "v2";
    await nsA.invalidate("k");
    expect(await nsB.get("k", load)).toBe("v2");
    expect(await nsA.get("k", load)).toBe("v2");
  });

  it("keeps a load that began before a write from caching what it read", async () => {
    const { cache } = await open();
    const ns = cache.namespace<string>("race", { prefix: "e:", ttlMs: 60_000 });
    let release: () => void = () => {};
    const slow = ns.get("k", () => new Promise<string>((resolve) => (release = () => resolve("old"))));
    await new Promise((r) => setTimeout(r, 20));
    await ns.invalidate("k");
    release();
    expect(await slow).toBe("old");
    // The write came after that read began: the next read loads again and sees the new row.
    expect(await ns.get("k", async () => "new")).toBe("new");
  });
});
