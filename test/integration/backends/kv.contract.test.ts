import { randomBytes } from "node:crypto";
import { Code } from "@connectrpc/connect";
import { Redis } from "ioredis";
import type { KvStore } from "../../../server/backends/kv/kv-store";
import { openKvStore } from "../../../server/backends/kv/open-kv-store";
import { createRedisKvStore, openRedisKvStore, parseRedisKvUrl } from "../../../server/backends/kv/redis";
import { createSqlKvStore, sweepExpiredKv } from "../../../server/backends/kv/sql";
import type { SqlBackend } from "../../../server/backends/sql/sql-store";
import { openServiceSql } from "../../../server/schema";
import { describeEachBackend, type BackendCase } from "../../support/backends";
import { errorOf } from "../../support/errors";
import { freePort } from "../../support/private-mariadb";
import { createPrivateRedisCluster, redisClusterUnavailable, type PrivateRedisCluster } from "../../support/private-redis-cluster";
import { createSqlTarget, DIALECTS, describeEachDialect, type Dialect } from "../../support/sql-targets";

const REDIS_URL = process.env.TEST_REDIS_URL ?? "redis://127.0.0.1:6379/15";

/** Two store instances over one backend, as two service instances would open it. */
interface Pair {
  readonly kv: KvStore;
  readonly other: KvStore;
}

function sqlCase(dialect: Dialect, name: string): BackendCase<Pair & { close(): Promise<void> }> {
  return {
    name,
    ...(DIALECTS.includes(dialect) ? {} : { skip: `TEST_DIALECTS leaves out ${dialect}` }),
    async open() {
      const target = createSqlTarget(dialect, "kv");
      const stores: SqlBackend[] = [await openServiceSql(target.url), await openServiceSql(target.url)];
      const [kv, other] = stores.map((s) => createSqlKvStore(s, { sweepIntervalMs: 0 })) as [KvStore, KvStore];
      return {
        kv,
        other,
        async close() {
          await kv.close();
          await other.close();
          for (const s of stores) await s.close();
          await target.drop();
        },
      };
    },
    close: (pair) => pair.close(),
  };
}

/** A Redis case: `start` gives the URL of a server to use, `finish` removes what the run stored. */
function redisCase(name: string, start: () => Promise<string>, finish: (prefix: string) => Promise<void>, skip?: string): BackendCase<Pair & { close(): Promise<void> }> {
  return {
    name,
    ...(skip ? { skip } : {}),
    async open() {
      const url = await start();
      const prefix = `persistence-test:kv:${randomBytes(4).toString("hex")}:`;
      const kv = (await openRedisKvStore(url, { prefix })).store;
      const other = (await openRedisKvStore(url, { prefix })).store;
      return {
        kv,
        other,
        async close() {
          await kv.close();
          await other.close();
          await finish(prefix);
        },
      };
    },
    close: (pair) => pair.close(),
  };
}

async function deleteRedisKeys(prefix: string): Promise<void> {
  const client = new Redis(REDIS_URL);
  try {
    for await (const keys of client.scanStream({ match: `${prefix}*`, count: 500 })) {
      if ((keys as string[]).length > 0) await client.unlink(...(keys as string[]));
    }
  } finally {
    client.disconnect();
  }
}

let cluster: PrivateRedisCluster | undefined;

const CASES = [
  sqlCase("sqlite", "sqlite"),
  sqlCase("mysql", "mariadb"),
  redisCase("redis", async () => REDIS_URL, deleteRedisKeys),
  redisCase(
    "redis-cluster",
    async () => (cluster = await createPrivateRedisCluster()).url,
    async () => cluster?.destroy(),
    redisClusterUnavailable(),
  ),
];

const unique = (name: string) => `${name}:${randomBytes(6).toString("hex")}`;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Polls until `check` holds; fails after a generous bound (a slow machine only makes it wait longer). */
async function eventually(check: () => Promise<boolean>, what: string, boundMs = 15_000): Promise<void> {
  const deadline = Date.now() + boundMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`still not true after ${boundMs} ms: ${what}`);
    await sleep(25);
  }
}

describeEachBackend("kv", CASES, (pair) => {
  const kv = () => pair().kv;
  const other = () => pair().other;

  describe("values", () => {
    it("returns what was set, from every store instance, and nothing for a key never set", async () => {
      const key = unique("v");
      await kv().set(key, "hello");
      expect(await kv().get(key)).toBe("hello");
      expect(await other().get(key)).toBe("hello");
      expect(await kv().get(unique("never"))).toBeUndefined();
    });

    it("replaces a value on set, TTL included", async () => {
      const key = unique("replace");
      await kv().set(key, "first", { ttlMs: 50 });
      await kv().set(key, "second");
      await sleep(150);
      expect(await kv().get(key)).toBe("second");
    });

    it("keeps any text exactly, and tells apart keys that differ only in case or a trailing space", async () => {
      const key = unique("text");
      const value = "héllo wörld ✓ 𝄞\nline two\t \u0000end ";
      await kv().set(key, value);
      await kv().set(`${key} `, "with a space");
      await kv().set(key.toUpperCase(), "upper");
      expect(await kv().get(key)).toBe(value);
      expect(await kv().get(`${key} `)).toBe("with a space");
      expect(await kv().get(key.toUpperCase())).toBe("upper");
      await kv().set(unique("empty"), "");
    });

    it("forgets a value once its TTL has passed, and keeps one whose TTL has not", async () => {
      const short = unique("short");
      const long = unique("long");
      await kv().set(short, "x", { ttlMs: 40 });
      await kv().set(long, "y", { ttlMs: 600_000 });
      await eventually(async () => (await kv().get(short)) === undefined, "the short-lived value expires");
      expect(await other().get(short)).toBeUndefined();
      expect(await kv().get(long)).toBe("y");
    });

    it("setIfAbsent stores only when no live value is there, and again once the old one expired", async () => {
      const key = unique("nx");
      expect(await kv().setIfAbsent(key, "first", { ttlMs: 600_000 })).toBe(true);
      expect(await other().setIfAbsent(key, "second")).toBe(false);
      expect(await kv().get(key)).toBe("first");
      const expiring = unique("nx-expiring");
      expect(await kv().setIfAbsent(expiring, "first", { ttlMs: 30 })).toBe(true);
      await eventually(async () => (await kv().get(expiring)) === undefined, "the first value expires");
      expect(await other().setIfAbsent(expiring, "second")).toBe(true);
      expect(await kv().get(expiring)).toBe("second");
    });

    it("setIfAbsent lets exactly one of many concurrent callers win", async () => {
      const key = unique("race");
      const wins = await Promise.all(Array.from({ length: 40 }, (_, i) => (i % 2 ? kv() : other()).setIfAbsent(key, `caller ${i}`, { ttlMs: 60_000 })));
      expect(wins.filter(Boolean)).toHaveLength(1);
      expect(await kv().get(key)).toBe(`caller ${wins.indexOf(true)}`);
    });

    it("expire gives a value a new TTL (a sliding timeout) and says false when there is none", async () => {
      const key = unique("slide");
      await kv().set(key, "session");
      expect(await kv().expire(key, 40)).toBe(true);
      await eventually(async () => (await kv().get(key)) === undefined, "the value expires after the new TTL");
      expect(await kv().expire(key, 1000)).toBe(false);
      expect(await kv().expire(unique("never"), 1000)).toBe(false);
    });

    it("getMany answers in the order asked, with undefined for missing and expired keys", async () => {
      const keys = Array.from({ length: 620 }, (_, i) => unique(`many${i}`));
      await Promise.all(keys.map((k, i) => (i % 3 === 0 ? Promise.resolve() : kv().set(k, `value ${i}`, i % 3 === 1 ? { ttlMs: 30 } : undefined))));
      const shortLived = keys.filter((_, i) => i % 3 === 1);
      await eventually(async () => (await Promise.all(shortLived.map((k) => kv().get(k)))).every((v) => v === undefined), "the short-lived ones expire");
      const values = await other().getMany(keys);
      expect(values).toEqual(keys.map((_, i) => (i % 3 === 2 ? `value ${i}` : undefined)));
      expect(await kv().getMany([])).toEqual([]);
    });

    it("delete removes values and sets and counts only the keys that held something", async () => {
      const [a, b, set, missing, expired] = ["a", "b", "set", "missing", "expired"].map(unique) as [string, string, string, string, string];
      await kv().set(a, "1");
      await kv().set(b, "2");
      await kv().set(expired, "3", { ttlMs: 20 });
      await kv().setAdd(set, ["m1", "m2"]);
      await eventually(async () => (await kv().get(expired)) === undefined, "the value expires");
      expect(await other().delete(a, b, set, missing, expired)).toBe(3);
      expect(await kv().getMany([a, b])).toEqual([undefined, undefined]);
      expect(await kv().setMembers(set)).toEqual([]);
      expect(await kv().delete(a)).toBe(0);
    });
  });

  describe("counters", () => {
    it("incrBy counts from zero, down as well as up, visible to every instance", async () => {
      const key = unique("count");
      expect(await kv().incrBy(key, 5)).toBe(5);
      expect(await other().incrBy(key, -2)).toBe(3);
      expect(await kv().get(key)).toBe("3");
    });

    it("incrBy keeps the first increment's TTL as the window instead of extending it", async () => {
      const key = unique("window");
      // The first TTL must outlast one call, or the second increment would start a window of its own.
      await kv().incrBy(key, 1, { ttlMs: 1500 });
      expect(await kv().incrBy(key, 1, { ttlMs: 600_000 })).toBe(2);
      await eventually(async () => (await kv().get(key)) === undefined, "the window ends with the first TTL");
      expect(await kv().incrBy(key, 1, { ttlMs: 600_000 })).toBe(1);
    });

    it("counts every one of many concurrent increments from two instances", async () => {
      const key = unique("concurrent");
      await Promise.all(Array.from({ length: 100 }, (_, i) => (i % 2 ? kv() : other()).incrBy(key, 2)));
      expect(await kv().get(key)).toBe("200");
    });

    it("refuses to count on a value that is not a counter (FAILED_PRECONDITION)", async () => {
      const key = unique("text");
      await kv().set(key, "not a number");
      expect((await errorOf(kv().incrBy(key, 1))).code).toBe(Code.FailedPrecondition);
      expect((await errorOf(kv().consume(key, 1, 10))).code).toBe(Code.FailedPrecondition);
      expect(await kv().get(key)).toBe("not a number");
    });

    it("consume takes an amount only while the count stays within the limit", async () => {
      const key = unique("quota");
      expect(await kv().consume(key, 7, 10)).toEqual({ allowed: true, remaining: 3 });
      expect(await other().consume(key, 4, 10)).toEqual({ allowed: false, remaining: 3 });
      expect(await kv().consume(key, 3, 10)).toEqual({ allowed: true, remaining: 0 });
      expect(await kv().consume(key, 1, 10)).toEqual({ allowed: false, remaining: 0 });
      expect(await kv().consume(unique("big"), 11, 10)).toEqual({ allowed: false, remaining: 10 });
      expect(await kv().get(key)).toBe("10");
    });

    it("consume never passes the limit under 200 concurrent calls from two instances", async () => {
      const key = unique("contended");
      const limit = 57;
      const results = await Promise.all(Array.from({ length: 200 }, (_, i) => (i % 2 ? kv() : other()).consume(key, 1, limit, 600_000)));
      const allowed = results.filter((r) => r.allowed);
      expect(allowed).toHaveLength(limit);
      // Each grant saw the count one further along: no two callers were given the same unit.
      expect(allowed.map((r) => r.remaining).sort((a, b) => a - b)).toEqual(Array.from({ length: limit }, (_, i) => i));
      expect(await kv().get(key)).toBe(String(limit));
    });

    it("consume with mixed amounts under concurrency grants exactly what the counter holds, never past the limit", async () => {
      const key = unique("mixed");
      const limit = 100;
      const amounts = Array.from({ length: 120 }, (_, i) => 1 + (i % 4));
      const results = await Promise.all(amounts.map((n, i) => (i % 2 ? kv() : other()).consume(key, n, limit)));
      const granted = results.reduce((sum, r, i) => sum + (r.allowed ? amounts[i]! : 0), 0);
      expect(granted).toBeLessThanOrEqual(limit);
      expect(granted).toBeGreaterThan(limit - 4);
      expect(Number(await kv().get(key))).toBe(granted);
    });

    it("consume starts a new window once the TTL has passed", async () => {
      const key = unique("daily");
      expect((await kv().consume(key, 10, 10, 60)).allowed).toBe(true);
      await eventually(async () => (await kv().consume(key, 10, 10, 60)).allowed, "a fresh window lets the amount through");
    });
  });

  describe("token buckets", () => {
    it("let the burst through, then refuse with the time until the next token", async () => {
      const bucket = unique("bucket");
      // One token per 10 s, so none flows in between these calls however slow the machine.
      for (let i = 0; i < 3; i++) expect(await kv().take(bucket, 0.1, 3)).toEqual({ allowed: true, retryAfterMs: 0 });
      const refused = await other().take(bucket, 0.1, 3);
      expect(refused.allowed).toBe(false);
      expect(refused.retryAfterMs).toBeGreaterThan(0);
      expect(refused.retryAfterMs).toBeLessThanOrEqual(10_000);
      expect((await kv().take(unique("another"), 0.1, 3)).allowed).toBe(true);
    });

    it("refill over time", async () => {
      const bucket = unique("refill");
      let taken = 0;
      // Two tokens a second: the loop ends unless every call took half a second.
      while ((await kv().take(bucket, 2, 2)).allowed) taken++;
      expect(taken).toBeGreaterThanOrEqual(2);
      await eventually(async () => (await other().take(bucket, 2, 2)).allowed, "a token flows in");
    });

    it("share one bucket across instances: 100 concurrent takes get exactly the burst", async () => {
      const bucket = unique("shared");
      // One token per 100 s: none flows in while the test runs.
      const results = await Promise.all(Array.from({ length: 100 }, (_, i) => (i % 2 ? kv() : other()).take(bucket, 0.01, 25)));
      expect(results.filter((r) => r.allowed)).toHaveLength(25);
      for (const r of results.filter((x) => !x.allowed)) expect(r.retryAfterMs).toBeGreaterThan(0);
    });
  });

  describe("sets", () => {
    it("add, list (sorted) and remove members, seen by every instance", async () => {
      const key = unique("sessions");
      await kv().setAdd(key, ["s2", "s1"]);
      await other().setAdd(key, "s3");
      await kv().setAdd(key, "s1");
      expect(await other().setMembers(key)).toEqual(["s1", "s2", "s3"]);
      expect(await kv().setRemove(key, ["s2", "nope"])).toBe(1);
      expect(await kv().setMembers(key)).toEqual(["s1", "s3"]);
      expect(await kv().setMembers(unique("empty"))).toEqual([]);
    });

    it("drop each member when its own TTL passes; adding it again renews it", async () => {
      const key = unique("expiring");
      await kv().setAdd(key, ["short", "renewed"], { ttlMs: 60 });
      await kv().setAdd(key, "long", { ttlMs: 600_000 });
      await kv().setAdd(key, "renewed", { ttlMs: 600_000 });
      await eventually(async () => !(await kv().setMembers(key)).includes("short"), "the short member leaves");
      expect(await other().setMembers(key)).toEqual(["long", "renewed"]);
      expect(await kv().setRemove(key, "short")).toBe(0);
    });

    it("become empty once every member has expired", async () => {
      const key = unique("gone");
      await kv().setAdd(key, ["a", "b"], { ttlMs: 30 });
      await eventually(async () => (await kv().setMembers(key)).length === 0, "every member expires");
      expect(await kv().delete(key)).toBe(0);
    });
  });

  describe("views and arguments", () => {
    it("scoped views keep callers' keys apart, nest, and show under the root with their prefix", async () => {
      const key = unique("k");
      const users = kv().scoped("users:");
      const files = kv().scoped("files:");
      await users.set(key, "user value");
      expect(await files.get(key)).toBeUndefined();
      expect(await kv().get(`users:${key}`)).toBe("user value");
      expect(await users.scoped("cache:").prefix).toBe("users:cache:");
      await users.scoped("cache:").set(key, "nested");
      expect(await other().scoped("users:cache:").get(key)).toBe("nested");
      await users.close(); // a view's close leaves the store open
      expect(await kv().get(`users:${key}`)).toBe("user value");
    });

    it("refuses empty and over-long keys, bad TTLs and amounts with INVALID_ARGUMENT", async () => {
      const refusals = [
        kv().get(""),
        kv().set("x".repeat(1025), "v"),
        kv().scoped("é".repeat(300)).get("x".repeat(500)),
        kv().set(unique("ttl"), "v", { ttlMs: 0 }),
        kv().set(unique("ttl"), "v", { ttlMs: 1.5 }),
        kv().consume(unique("c"), -1, 10),
        kv().consume(unique("c"), 1, 10, -5),
        kv().take(unique("b"), 0, 5),
        kv().take(unique("b"), 1, 0.5),
        kv().setAdd(unique("s"), ""),
        kv().setAdd(unique("s"), "m".repeat(513)),
      ];
      for (const refusal of refusals) expect((await errorOf(refusal)).code).toBe(Code.InvalidArgument);
      expect(() => kv().scoped("")).toThrow();
      await kv().set("k".repeat(1024 - kv().prefix.length), "longest key there may be");
    });

    it("names its role and implementation, and answers a ping", async () => {
      expect(kv().name).toBe("kv");
      expect(kv().kind).toMatch(/^(sql-sqlite|sql-mysql|redis|redis-cluster)$/);
      await kv().ping();
    });
  });
});

describeEachDialect("kv sweeping", (target, dialect) => {
  it("deletes expired rows, values and set members, and nothing live", async () => {
    const store = await openServiceSql(target().url);
    const kv = createSqlKvStore(store, { sweepIntervalMs: 0 });
    try {
      await kv.set("live", "1");
      await kv.set("expiring", "2", { ttlMs: 20 });
      await kv.setAdd("set", "expiring", { ttlMs: 20 });
      await kv.setAdd("set", "live");
      await sleep(60);
      expect(await sweepExpiredKv(store)).toBe(2);
      const rows = await store.db.withTables<{ kv_entries: { k: string } }>().selectFrom("kv_entries").select("k").execute();
      expect(rows.map((r) => String(r.k))).toEqual(["live"]);
      expect(await kv.setMembers("set")).toEqual(["live"]);
      expect(await sweepExpiredKv(store)).toBe(0);
    } finally {
      await kv.close();
      await store.close();
    }
  });

  it(`sweeps on its own under the lease [${dialect}]`, async () => {
    const store = await openServiceSql(target().url);
    const kv = createSqlKvStore(store, { sweepIntervalMs: 50 });
    try {
      await kv.set("sweep-me", "x", { ttlMs: 10 });
      const table = store.db.withTables<{ kv_entries: { k: string } }>();
      await eventually(async () => (await table.selectFrom("kv_entries").select("k").where("k", "=", "sweep-me").execute()).length === 0, "the sweep removes the row");
      const lease = await store.db.withTables<{ leases: { name: string } }>().selectFrom("leases").select("name").where("name", "=", "kv-sweep").execute();
      expect(lease).toHaveLength(1);
    } finally {
      await kv.close();
      await store.close();
    }
  });
});

describeEachDialect("kv on a database that cannot serve", (target) => {
  it("answers UNAVAILABLE rather than an internal error", async () => {
    const store = await openServiceSql(target().url);
    const kv = createSqlKvStore(store, { sweepIntervalMs: 0 });
    await kv.set("k", "v");
    await store.close();
    for (const call of [kv.get("k"), kv.consume("q", 1, 5), kv.take("b", 1, 1), kv.setMembers("s")]) {
      expect((await errorOf(call)).code).toBe(Code.Unavailable);
    }
    await kv.close();
  });
});

describe("Redis kv store", () => {
  it("reads redis://, rediss:// and redis+cluster:// URLs", () => {
    expect(parseRedisKvUrl("redis://127.0.0.1:6379/2")).toEqual({ mode: "standalone", url: "redis://127.0.0.1:6379/2" });
    expect(parseRedisKvUrl("rediss://u:p@host:6380")).toEqual({ mode: "standalone", url: "rediss://u:p@host:6380" });
    expect(parseRedisKvUrl("redis+cluster://alice:s%40cret@10.0.0.1:7000,10.0.0.2:7001,[::1]")).toEqual({
      mode: "cluster",
      nodes: [
        { host: "10.0.0.1", port: 7000 },
        { host: "10.0.0.2", port: 7001 },
        { host: "::1", port: 6379 },
      ],
      username: "alice",
      password: "s@cret",
      tls: false,
    });
    expect(parseRedisKvUrl("rediss+cluster://h:1")).toMatchObject({ mode: "cluster", tls: true });
    for (const bad of ["http://h:1", "redis://", "redis+cluster://", "nonsense"]) expect(() => parseRedisKvUrl(bad)).toThrow();
  });

  it("answers UNAVAILABLE, quickly and without queueing, while Redis cannot be reached", async () => {
    const port = await freePort();
    const { store, connected } = await openRedisKvStore(`redis://127.0.0.1:${port}`);
    try {
      expect(connected).toBe(false);
      for (const call of [store.get("k"), store.take("b", 1, 1), store.consume("q", 1, 1), store.ping()]) {
        expect((await errorOf(call)).code).toBe(Code.Unavailable);
      }
    } finally {
      await store.close();
    }
  });

  it("over a shared client leaves that client open when closed", async () => {
    const client = new Redis(REDIS_URL);
    try {
      const store = createRedisKvStore(client, { prefix: `persistence-test:shared:${randomBytes(4).toString("hex")}:` });
      await store.set("k", "v", { ttlMs: 10_000 });
      await store.close();
      expect(await client.ping()).toBe("PONG");
      await createRedisKvStore(client).ping(); // a second store on the same client reuses its scripts
    } finally {
      client.disconnect();
    }
  });
});

describe("openKvStore", () => {
  it("chooses Redis when a URL is given and the SQL tables otherwise", async () => {
    const target = createSqlTarget("sqlite", "kv-open");
    const store = await openServiceSql(target.url);
    try {
      const embedded = await openKvStore({ sql: store });
      expect(embedded.kind).toBe("sql-sqlite");
      await embedded.close();
      const redis = await openKvStore({ sql: store, redisUrl: REDIS_URL, prefix: `persistence-test:open:${randomBytes(4).toString("hex")}:` });
      expect(redis.kind).toBe("redis");
      await redis.ping();
      await redis.close();
      const warnings: string[] = [];
      const logger = { warn: (msg: string) => warnings.push(msg) } as unknown as Parameters<typeof openKvStore>[0]["logger"];
      const down = await openKvStore({ sql: store, redisUrl: `redis://127.0.0.1:${await freePort()}`, ...(logger ? { logger } : {}) });
      expect(warnings.join()).toContain("Redis unreachable at start-up");
      await down.close();
    } finally {
      await store.close();
      await target.drop();
    }
  });
});
