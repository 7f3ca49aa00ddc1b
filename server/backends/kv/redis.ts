import { Cluster, Redis } from "ioredis";
import { ConnectError } from "@connectrpc/connect";
import { failedPrecondition, invalidArgument, unavailable } from "../../core/errors.js";
import type { KvStore } from "./kv-store.js";
import { createKvView, type KvOperations } from "./kv-view.js";

/** A standalone Redis client or a Cluster client: both take the same commands. */
export type RedisClient = Redis | Cluster;

export interface RedisKvOptions {
  /** Put before every key, so other users of the same Redis cannot collide (default "persistence:"). */
  readonly prefix?: string;
}

/** Where a Redis kv store lives, from its URL. */
export type RedisKvTarget =
  | { readonly mode: "standalone"; readonly url: string }
  | {
      readonly mode: "cluster";
      readonly nodes: readonly { readonly host: string; readonly port: number }[];
      readonly username?: string;
      readonly password?: string;
      readonly tls: boolean;
    };

/**
 * Parses `redis://[user:pass@]host:port[/db]` (`rediss://` for TLS) or, for Redis Cluster,
 * `redis+cluster://[user:pass@]host:port,host:port,...` (`rediss+cluster://` for TLS): the nodes
 * listed are seeds, the client learns the others from the cluster.
 */
export function parseRedisKvUrl(url: string): RedisKvTarget {
  const match = /^(rediss?)\+cluster:\/\/(?:([^@/]*)@)?([^/?#]+)\/?$/.exec(url);
  if (!match) {
    const parsed = URL.canParse(url) ? new URL(url) : undefined;
    if (!parsed || (parsed.protocol !== "redis:" && parsed.protocol !== "rediss:") || !parsed.hostname) {
      throw invalidArgument([{ field: "redis_url", description: "must be redis://host:port[/db], rediss://..., or redis+cluster://host:port,host:port" }]);
    }
    return { mode: "standalone", url };
  }
  const [, scheme, auth, hosts] = match;
  const nodes = (hosts ?? "").split(",").map((hostPort) => {
    const node = /^\[?([^\]]+?)\]?(?::(\d+))?$/.exec(hostPort.trim());
    if (!node?.[1]) throw invalidArgument([{ field: "redis_url", description: `cannot read the cluster node ${JSON.stringify(hostPort)}` }]);
    return { host: node[1], port: node[2] ? Number(node[2]) : 6379 };
  });
  const [user, ...pass] = (auth ?? "").split(":");
  return {
    mode: "cluster",
    nodes,
    ...(user ? { username: decodeURIComponent(user) } : {}),
    ...(pass.length > 0 ? { password: decodeURIComponent(pass.join(":")) } : {}),
    tls: scheme === "rediss",
  };
}

/**
 * Opens a kv store on its own Redis connection (standalone or Cluster, by URL). When Redis cannot be
 * reached, the store still opens: its calls reject with UNAVAILABLE and the client keeps reconnecting.
 * Resolves to the store and whether the first connection succeeded.
 */
export async function openRedisKvStore(url: string, options: RedisKvOptions = {}): Promise<{ store: KvStore; connected: boolean }> {
  const target = parseRedisKvUrl(url);
  // Fail fast while it is unreachable (no offline queue), so callers can fall back instead of piling up.
  const common = { lazyConnect: true, enableOfflineQueue: false, maxRetriesPerRequest: 1, connectTimeout: 2000 } as const;
  const backoff = (times: number) => Math.min(100 * 2 ** Math.min(times, 6), 5000);
  const client: RedisClient =
    target.mode === "standalone"
      ? new Redis(target.url, { ...common, retryStrategy: backoff })
      : new Cluster(target.nodes.map((n) => ({ ...n })), {
          lazyConnect: true,
          enableOfflineQueue: false,
          clusterRetryStrategy: backoff,
          redisOptions: {
            ...common,
            ...(target.username ? { username: target.username } : {}),
            ...(target.password ? { password: target.password } : {}),
            ...(target.tls ? { tls: {} } : {}),
          },
        });
  client.on("error", () => {}); // reported through ping() and the calls' UNAVAILABLE
  let connected = true;
  await client.connect().catch(() => {
    connected = false;
  });
  return { store: createRedisKvStore(client, { ...options, owned: true }), connected };
}

/**
 * A kv store over an existing client (e.g. the service's shared Redis connection). Closing it leaves
 * the client open unless `owned`.
 */
export function createRedisKvStore(client: RedisClient, options: RedisKvOptions & { readonly owned?: boolean } = {}): KvStore {
  const base = options.prefix ?? "persistence:";
  const cluster = client instanceof Cluster;
  const script = defineScripts(client);
  // Every script touches one key, so none needs a hash tag on a Cluster. Calls that name many keys
  // (getMany, delete) go key by key there: those keys may live on different nodes.
  const ops: KvOperations = {
    get: (key) => call(async () => (await client.get(base + key)) ?? undefined),
    getMany: (keys) =>
      call(async () => {
        const values = cluster ? await Promise.all(keys.map((k) => client.get(base + k))) : await client.mget(...keys.map((k) => base + k));
        return values.map((v) => v ?? undefined);
      }),
    set: (key, value, options) =>
      call(async () => {
        if (options?.ttlMs !== undefined) await client.set(base + key, value, "PX", options.ttlMs);
        else await client.set(base + key, value);
      }),
    setIfAbsent: (key, value, options) =>
      call(async () => {
        const done = options?.ttlMs !== undefined ? await client.set(base + key, value, "PX", options.ttlMs, "NX") : await client.set(base + key, value, "NX");
        return done === "OK";
      }),
    expire: (key, ttlMs) => call(async () => (await client.pexpire(base + key, ttlMs)) === 1),
    delete: (...keys) =>
      call(async () => {
        if (!cluster) return client.unlink(...keys.map((k) => base + k));
        const counts = await Promise.all(keys.map((k) => client.unlink(base + k)));
        return counts.reduce((a, b) => a + b, 0);
      }),
    incrBy: (key, amount, options) => call(async () => Number(await script.incr(base + key, amount, options?.ttlMs ?? 0))),
    consume: (key, amount, limit, ttlMs) =>
      call(async () => {
        const [allowed, remaining] = (await script.consume(base + key, amount, limit, ttlMs ?? 0)) as [number, number];
        return { allowed: allowed === 1, remaining: Math.max(0, remaining) };
      }),
    take: (bucket, ratePerSecond, burst) =>
      call(async () => {
        const wait = Number(await script.take(base + bucket, ratePerSecond, burst));
        return wait < 0 ? { allowed: true, retryAfterMs: 0 } : { allowed: false, retryAfterMs: wait };
      }),
    setAdd: (key, members, options) =>
      call(async () => {
        await script.setAdd(base + key, options?.ttlMs ?? 0, ...members);
      }),
    setRemove: (key, members) => call(async () => Number(await script.setRemove(base + key, ...members))),
    setMembers: (key) => call(async () => (await script.setMembers(base + key)) as string[]),
  };
  return createKvView(ops, {
    kind: cluster ? "redis-cluster" : "redis",
    ping: () => call(async () => void (await client.ping())),
    close: async () => {
      if (options.owned) client.disconnect();
    },
  });
}

/** Runs one call, turning client failures into the service's errors. */
async function call<T>(work: () => Promise<T>): Promise<T> {
  try {
    return await work();
  } catch (err) {
    if (err instanceof ConnectError) throw err;
    const message = err instanceof Error ? err.message : String(err);
    if (/WRONGTYPE|not an integer|attempt to perform arithmetic|attempt to compare/i.test(message)) {
      throw failedPrecondition("the kv key holds another kind of item", { type: "KV_ITEM_KIND", subject: "kv", description: message });
    }
    throw unavailable(`kv store (redis) unreachable: ${message}`, 1000);
  }
}

/** The server's clock in milliseconds, the same for every instance. */
const NOW = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
`;

/** Gives KEYS[1] the TTL ARGV[ttlArg] if it is positive and the key has no expiry yet. */
const WINDOW = (ttlArg: number) => `
local ttl = tonumber(ARGV[${ttlArg}])
if ttl > 0 and redis.call('PTTL', KEYS[1]) == -1 then redis.call('PEXPIRE', KEYS[1], ttl) end
`;

/** Atomic scripts, each on one key (KEYS[1]). */
const SCRIPTS = {
  incr: `
local v = redis.call('INCRBY', KEYS[1], ARGV[1])
${WINDOW(2)}
return v
`,
  // Returns {1, remaining} when consumed, {0, remaining} when it would pass the limit.
  consume: `
local used = tonumber(redis.call('GET', KEYS[1]) or '0')
local amount = tonumber(ARGV[1])
local limit = tonumber(ARGV[2])
if used + amount > limit then return {0, limit - used} end
local v = redis.call('INCRBY', KEYS[1], amount)
${WINDOW(3)}
return {1, limit - v}
`,
  // Returns -1 when a token was taken, else the milliseconds until one is there.
  take: `
local rate = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
${NOW}
local state = redis.call('HMGET', KEYS[1], 'tokens', 'at')
local tokens = tonumber(state[1]) or burst
local at = tonumber(state[2]) or now
tokens = math.min(burst, tokens + math.max(0, now - at) / 1000 * rate)
local ttl = math.ceil(burst / rate * 1000) + 1000
local wait = -1
if tokens >= 1 then tokens = tokens - 1 else wait = math.ceil((1 - tokens) / rate * 1000) end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'at', now)
redis.call('PEXPIRE', KEYS[1], ttl)
return wait
`,
  // A sorted set scored by each member's expiry (ms); the key itself expires with its last member. A
  // member counts until the end of its expiry millisecond, as Redis counts a key.
  setAdd: `
${NOW}
local ttl = tonumber(ARGV[1])
local score = '+inf'
if ttl > 0 then score = now + ttl end
for i = 2, #ARGV do redis.call('ZADD', KEYS[1], score, ARGV[i]) end
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', '(' .. now)
local last = redis.call('ZRANGE', KEYS[1], -1, -1, 'WITHSCORES')
if last[2] == 'inf' then redis.call('PERSIST', KEYS[1]) else redis.call('PEXPIREAT', KEYS[1], math.ceil(tonumber(last[2]))) end
return 1
`,
  // Expired members are dropped first, so they do not count as removed.
  setRemove: `
${NOW}
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', '(' .. now)
return redis.call('ZREM', KEYS[1], unpack(ARGV))
`,
  setMembers: `
${NOW}
return redis.call('ZRANGEBYSCORE', KEYS[1], now, '+inf')
`,
} as const;

type Script = (key: string, ...args: (string | number)[]) => Promise<unknown>;

/** Registers the scripts on the client once (EVALSHA, falling back to EVAL), under names of their own. */
function defineScripts(client: RedisClient): Record<keyof typeof SCRIPTS, Script> {
  const commands = client as unknown as Record<string, Script>;
  return Object.fromEntries(
    Object.entries(SCRIPTS).map(([name, lua]) => {
      const command = `persistenceKv_${name}`;
      if (typeof commands[command] !== "function") client.defineCommand(command, { numberOfKeys: 1, lua });
      return [name, (key: string, ...args: (string | number)[]) => commands[command]!.call(client, key, ...args)];
    }),
  ) as Record<keyof typeof SCRIPTS, Script>;
}
