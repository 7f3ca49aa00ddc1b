import { randomBytes } from "node:crypto";
import net from "node:net";
import { Code } from "@connectrpc/connect";
import { RetryInfoSchema } from "../../gen/google/rpc/error_details_pb";
import { Health, HealthCheckResponse_ServingStatus as Serving } from "../../gen/grpc/health/v1/health_pb";
import { TranslationService } from "../../gen/persistence/v1/translation_pb";
import { createSqlKvStore } from "../../server/backends/kv/sql";
import { openServiceSql } from "../../server/schema";
import { createLogger } from "../../server/core/logger";
import { createKvBuckets, createMemoryBuckets } from "../../server/security/rate-limit";
import { createSqlTarget } from "../support/sql-targets";
import { errorOf } from "../support/errors";
import { secret } from "../support/secrets";
import { PROTOCOLS, startTestServer, type TestServer } from "../support/test-server";

const REDIS_URL = process.env.TEST_REDIS_URL ?? "redis://127.0.0.1:6379/15";

function keysFor(...names: string[]): { keys: Record<string, string>; env: string } {
  const keys = Object.fromEntries(names.map((n) => [n, secret(`${n}-${randomBytes(12).toString("hex")}`)]));
  return { keys, env: JSON.stringify(names.map((name) => ({ name, key: keys[name], scopes: ["translation:read"] }))) };
}
const bearer = (key: string | undefined) => ({ headers: { authorization: `Bearer ${key}` } });

describe("token buckets in memory", () => {
  it("allow the burst, then one call per 1/rate seconds, telling how long to wait", async () => {
    const buckets = createMemoryBuckets();
    const limit = { ratePerSecond: 10, burst: 3 };
    for (let i = 0; i < 3; i++) expect((await buckets.take("a", limit)).allowed).toBe(true);
    const denied = await buckets.take("a", limit);
    expect(denied.allowed).toBe(false);
    expect(denied.retryAfterMs).toBeGreaterThan(0);
    expect(denied.retryAfterMs).toBeLessThanOrEqual(100);
    expect((await buckets.take("b", limit)).allowed).toBe(true);
    await new Promise((r) => setTimeout(r, denied.retryAfterMs + 20));
    expect((await buckets.take("a", limit)).allowed).toBe(true);
  });
});

describe("token buckets in the kv store", () => {
  it("are shared by every instance on the same store (here the embedded SQL one)", async () => {
    const target = createSqlTarget("sqlite", "buckets");
    const stores = [await openServiceSql(target.url), await openServiceSql(target.url)];
    const logger = createLogger("silent");
    try {
      const [a, b] = stores.map((s) => createKvBuckets(createSqlKvStore(s, { sweepIntervalMs: 0 }), logger));
      const limit = { ratePerSecond: 0.01, burst: 4 };
      const results = await Promise.all(Array.from({ length: 10 }, (_, i) => (i % 2 ? a! : b!).take("key:shared", limit)));
      expect(results.filter((r) => r.allowed)).toHaveLength(4);
    } finally {
      for (const s of stores) await s.close();
      await target.drop();
    }
  });
});

describe("rate limits per key and per address", () => {
  const { keys, env } = keysFor("first", "second");
  let server: TestServer;
  beforeAll(async () => {
    server = await startTestServer({ PERSISTENCE_API_KEYS: env, PERSISTENCE_RATE_LIMIT_PER_KEY: "0.5:4", PERSISTENCE_RATE_LIMIT_PER_ADDRESS: "0.5:12" });
  });
  afterAll(async () => {
    await server?.close();
  });

  it.each(PROTOCOLS)("answers RESOURCE_EXHAUSTED with a retry delay once a key's bucket is empty, over %s", async (protocol) => {
    const { keys: own, env: ownEnv } = keysFor("k");
    const local = await startTestServer({ PERSISTENCE_API_KEYS: ownEnv, PERSISTENCE_RATE_LIMIT_PER_KEY: "0.5:3" });
    try {
      const client = local.client(TranslationService, protocol);
      for (let i = 0; i < 3; i++) await client.getStats({}, bearer(own.k));
      const error = await errorOf(client.getStats({}, bearer(own.k)));
      expect(error.code).toBe(Code.ResourceExhausted);
      expect(error.rawMessage).toBe('rate limit of API key "k" exceeded (0.5 calls/s)');
      const delay = error.findDetails(RetryInfoSchema)[0]?.retryDelay;
      expect(Number(delay?.seconds ?? 0) * 1000 + (delay?.nanos ?? 0) / 1e6).toBeGreaterThan(500);
    } finally {
      await local.close();
    }
  });

  it("keeps each key's bucket apart, limits the address across keys, and answers REST with 429 and Retry-After", async () => {
    const client = server.client(TranslationService);
    for (let i = 0; i < 4; i++) await client.getStats({}, bearer(keys.first));
    expect((await errorOf(client.getStats({}, bearer(keys.first)))).code).toBe(Code.ResourceExhausted);
    // The second key has its own bucket...
    for (let i = 0; i < 4; i++) await client.getStats({}, bearer(keys.second));
    const rest = await fetch(`${server.url}/api/v1/translation/stats`, { headers: { "x-api-key": String(keys.second) } });
    expect(rest.status).toBe(429);
    expect(Number(rest.headers.get("retry-after"))).toBeGreaterThanOrEqual(1);
    expect(((await rest.json()) as { code: string }).code).toBe("resource_exhausted");
    // ...but the address (12 calls, 10 taken above plus the 2 refused ones) is now empty for everyone.
    const address = await errorOf(client.getStats({}, bearer(keys.first)));
    expect(address.code).toBe(Code.ResourceExhausted);
  });
});

describe("rate limits shared through Redis", () => {
  it("holds one bucket for a key across instances", async () => {
    const { keys, env } = keysFor(`shared${randomBytes(3).toString("hex")}`);
    const key = Object.values(keys)[0];
    const settings = { PERSISTENCE_API_KEYS: env, PERSISTENCE_RATE_LIMIT_PER_KEY: "0.5:4", PERSISTENCE_REDIS_URL: REDIS_URL };
    const a = await startTestServer(settings);
    const b = await startTestServer(settings);
    try {
      const clients = [a.client(TranslationService), b.client(TranslationService)];
      for (let i = 0; i < 4; i++) await clients[i % 2]!.getStats({}, bearer(key));
      expect((await errorOf(clients[0]!.getStats({}, bearer(key)))).code).toBe(Code.ResourceExhausted);
      expect((await errorOf(clients[1]!.getStats({}, bearer(key)))).code).toBe(Code.ResourceExhausted);
    } finally {
      await a.close();
      await b.close();
    }
  });

  it("falls back to per-instance buckets while Redis cannot be reached", async () => {
    const closed = net.createServer();
    await new Promise<void>((r) => closed.listen(0, "127.0.0.1", r));
    const { port } = closed.address() as net.AddressInfo;
    await new Promise((r) => closed.close(r));
    const server = await startTestServer({ PERSISTENCE_RATE_LIMIT_PER_ADDRESS: "0.5:2", PERSISTENCE_REDIS_URL: `redis://127.0.0.1:${port}` });
    try {
      const client = server.client(TranslationService);
      await client.getStats({});
      await client.getStats({});
      expect((await errorOf(client.getStats({}))).code).toBe(Code.ResourceExhausted);
      expect(server.logs.some((l) => String(l.msg).includes("rate limits are per instance"))).toBe(true);
      // Health checks are never rate limited (a limited probe would take the instance out of service),
      // and Redis, which only backs the shared buckets, does not take the instance out either.
      const health = await fetch(`${server.url}/health`);
      expect(health.status).toBe(200);
      expect((await health.json()) as object).toMatchObject({ status: "healthy", backends: { sql: "up", redis: "down" } });
      expect((await fetch(`${server.url}/readyz`)).status).toBe(200);
      expect(await (await fetch(`${server.url}/metrics`)).text()).toContain('persistence_backend_up{backend="redis"} 0');
      expect((await server.client(Health, "grpc").check({ service: "persistence.v1.TranslationService" })).status).toBe(Serving.SERVING);
    } finally {
      await server.close();
    }
  });
});
