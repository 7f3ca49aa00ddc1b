import { Redis } from "ioredis";
import type { Backend } from "../backend.js";

/** Redis (`PERSISTENCE_REDIS_URL`): shared counters across instances (rate limits), later sessions and caches. */
export interface RedisBackend extends Backend {
  readonly client: Redis;
}

/**
 * Connects to `redis://[user:pass@]host:port[/db]`. Commands fail fast while it is unreachable
 * (no offline queue), so callers can fall back instead of piling up; the client reconnects by itself.
 */
export async function openRedisBackend(url: string, options: { readonly connect?: boolean } = {}): Promise<RedisBackend> {
  const client = new Redis(url, {
    lazyConnect: true,
    enableOfflineQueue: false,
    maxRetriesPerRequest: 1,
    connectTimeout: 2000,
    retryStrategy: (times) => Math.min(100 * 2 ** Math.min(times, 6), 5000),
  });
  client.on("error", () => {}); // reported through ping() and the health monitor
  // Without a first connect, the client connects on its own (and keeps retrying) when first used.
  if (options.connect === false) {
    client.connect().catch(() => {});
  } else {
    try {
      await client.connect();
    } catch (err) {
      client.disconnect(); // stops its reconnection attempts
      throw err;
    }
  }
  return {
    name: "redis",
    kind: "redis",
    client,
    async ping() {
      await client.ping();
    },
    async close() {
      client.disconnect();
    },
  };
}
