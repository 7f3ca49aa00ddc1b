import type { Interceptor } from "@connectrpc/connect";
import type { KvStore } from "../backends/kv/kv-store.js";
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
 * Buckets in the kv store (`take`), shared by every instance that uses the same store; while it cannot
 * be reached, this process's own buckets take over (logged once per outage). Bucket keys live under
 * `prefix` in the store.
 */
export function createKvBuckets(kv: KvStore, logger: Logger, prefix = "ratelimit:"): Buckets {
  const shared = kv.scoped(prefix);
  const local = createMemoryBuckets();
  let degraded = false;
  return {
    async take(bucket, limit) {
      try {
        const result = await shared.take(bucket, limit.ratePerSecond, limit.burst);
        if (degraded) logger.info({ kv: kv.kind }, "rate limits shared through the kv store again");
        degraded = false;
        return result;
      } catch (err) {
        if (!degraded) logger.warn({ kv: kv.kind, err: (err as Error).message }, "kv store unreachable: rate limits are per instance until it is back");
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
/** Takes one call from the caller's buckets (per key, per address); throws RESOURCE_EXHAUSTED when either is empty. */
export type RateLimiter = (key: string | undefined, address: string | undefined) => Promise<void>;

export function createRateLimiter(limits: RateLimits, buckets: Buckets): RateLimiter {
  return async (key, address) => {
    if (limits.perKey && key !== undefined) {
      const { allowed, retryAfterMs } = await buckets.take(`key:${key}`, limits.perKey);
      if (!allowed) throw resourceExhausted(`rate limit of API key "${key}" exceeded (${limits.perKey.ratePerSecond} calls/s)`, retryAfterMs);
    }
    if (limits.perAddress && address) {
      const { allowed, retryAfterMs } = await buckets.take(`ip:${address}`, limits.perAddress);
      if (!allowed) throw resourceExhausted(`rate limit of this client address exceeded (${limits.perAddress.ratePerSecond} calls/s)`, retryAfterMs);
    }
  };
}

export function createRateLimitInterceptor(limiter: RateLimiter, exempt: (rpcPath: string) => boolean = () => false): Interceptor {
  return (next) => async (req) => {
    if (exempt(`/${req.service.typeName}/${req.method.name}`)) return next(req);
    await limiter(req.contextValues.get(principalKey)?.name, req.contextValues.get(clientAddressKey));
    return next(req);
  };
}
