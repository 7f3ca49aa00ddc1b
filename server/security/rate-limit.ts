import type { Redis } from "ioredis";
import type { Interceptor } from "@connectrpc/connect";
import { resourceExhausted } from "../core/errors.js";
import type { Logger } from "../core/logger.js";
import { clientAddressKey, principalKey } from "../rpc/context.js";

/** A token bucket: `ratePerSecond` tokens flow in, up to `burst`; each call takes one. */
export interface BucketLimit {
  readonly ratePerSecond: number;
  readonly burst: number;
}

export interface RateLimits {
  /** Per API key (calls without a key are limited by address only). */
  readonly perKey?: BucketLimit;
  /** Per client IP address. */
  readonly perAddress?: BucketLimit;
}

/** Takes a token from a bucket: allowed, or how long until one is there. */
export interface Buckets {
  take(bucket: string, limit: BucketLimit): Promise<{ allowed: boolean; retryAfterMs: number }>;
}

/** Buckets in this process's memory; idle full buckets are forgotten. */
export function createMemoryBuckets(maxBuckets = 100_000): Buckets {
  const buckets = new Map<string, { tokens: number; at: number }>();
  return {
    async take(bucket, limit) {
      const now = performance.now();
      const state = buckets.get(bucket) ?? { tokens: limit.burst, at: now };
      state.tokens = Math.min(limit.burst, state.tokens + ((now - state.at) / 1000) * limit.ratePerSecond);
      state.at = now;
      buckets.delete(bucket); // re-inserted last: the map's order is least recently used first
      buckets.set(bucket, state);
      if (buckets.size > maxBuckets) buckets.delete(buckets.keys().next().value as string);
      if (state.tokens >= 1) {
        state.tokens -= 1;
        return { allowed: true, retryAfterMs: 0 };
      }
      return { allowed: false, retryAfterMs: Math.ceil(((1 - state.tokens) / limit.ratePerSecond) * 1000) };
    },
  };
}

/**
 * Buckets in Redis, shared by every instance: one atomic script per call, using the server's clock.
 * Returns 1 when allowed, else the milliseconds until a token is there.
 */
const TAKE = `
local key = KEYS[1]
local rate = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local state = redis.call('HMGET', key, 'tokens', 'at')
local tokens = tonumber(state[1]) or burst
local at = tonumber(state[2]) or now
tokens = math.min(burst, tokens + (now - at) / 1000 * rate)
local ttl = math.ceil(burst / rate * 1000) + 1000
if tokens >= 1 then
  redis.call('HSET', key, 'tokens', tokens - 1, 'at', now)
  redis.call('PEXPIRE', key, ttl)
  return -1
end
redis.call('HSET', key, 'tokens', tokens, 'at', now)
redis.call('PEXPIRE', key, ttl)
return math.ceil((1 - tokens) / rate * 1000)
`;

/** Redis buckets; while Redis cannot be reached, this process's own buckets take over (logged once per outage). */
export function createRedisBuckets(redis: Redis, logger: Logger, prefix = "persistence:ratelimit:"): Buckets {
  const local = createMemoryBuckets();
  let degraded = false;
  return {
    async take(bucket, limit) {
      try {
        const result = Number(await redis.eval(TAKE, 1, `${prefix}${bucket}`, limit.ratePerSecond, limit.burst));
        if (degraded) logger.info("rate limits shared through Redis again");
        degraded = false;
        return result < 0 ? { allowed: true, retryAfterMs: 0 } : { allowed: false, retryAfterMs: result };
      } catch (err) {
        if (!degraded) logger.warn({ err: (err as Error).message }, "Redis unreachable: rate limits are per instance until it is back");
        degraded = true;
        return local.take(bucket, limit);
      }
    },
  };
}

/**
 * Limits calls per API key and per client address; a call over either limit gets RESOURCE_EXHAUSTED
 * (429 on REST) with the delay after which a token is available. `exempt` calls (health checks) pass.
 */
export function createRateLimitInterceptor(limits: RateLimits, buckets: Buckets, exempt: (rpcPath: string) => boolean = () => false): Interceptor {
  return (next) => async (req) => {
    if (exempt(`/${req.service.typeName}/${req.method.name}`)) return next(req);
    const key = req.contextValues.get(principalKey)?.name;
    if (limits.perKey && key !== undefined) {
      const { allowed, retryAfterMs } = await buckets.take(`key:${key}`, limits.perKey);
      if (!allowed) throw resourceExhausted(`rate limit of API key "${key}" exceeded (${limits.perKey.ratePerSecond} calls/s)`, retryAfterMs);
    }
    const address = req.contextValues.get(clientAddressKey);
    if (limits.perAddress && address) {
      const { allowed, retryAfterMs } = await buckets.take(`ip:${address}`, limits.perAddress);
      if (!allowed) throw resourceExhausted(`rate limit of this client address exceeded (${limits.perAddress.ratePerSecond} calls/s)`, retryAfterMs);
    }
    return next(req);
  };
}
