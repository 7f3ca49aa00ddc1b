import type { Logger } from "../../core/logger.js";
import type { SqlBackend } from "../sql/sql-store.js";
import type { KvStore } from "./kv-store.js";
import { openRedisKvStore } from "./redis.js";
import { createSqlKvStore } from "./sql.js";

export interface OpenKvStoreOptions {
  /**
   * `PERSISTENCE_REDIS_URL`: `redis://`, `rediss://` or `redis+cluster://host:port,host:port`. When set,
   * the store is Redis; otherwise it is the embedded one, two tables of `sql`.
   */
  readonly redisUrl?: string;
  /** The SQL store, which holds the embedded kv tables (and their sweep lease). */
  readonly sql: SqlBackend;
  /** Put before every Redis key (default "persistence:"). */
  readonly prefix?: string;
  /** How often the embedded store deletes expired rows, in ms (default 60,000). */
  readonly sweepIntervalMs?: number;
  /** Told when Redis cannot be reached at start-up, and of failed sweeps (default: nowhere). */
  readonly logger?: Logger;
}

/**
 * The one place that chooses the kv implementation. An unreachable Redis does not fail start-up: the
 * store opens, its calls answer UNAVAILABLE until Redis is back, and its ping says so.
 */
export async function openKvStore(options: OpenKvStoreOptions): Promise<KvStore> {
  if (options.redisUrl === undefined) {
    return createSqlKvStore(options.sql, {
      ...(options.sweepIntervalMs !== undefined ? { sweepIntervalMs: options.sweepIntervalMs } : {}),
      ...(options.logger ? { logger: options.logger } : {}),
    });
  }
  const { store, connected } = await openRedisKvStore(options.redisUrl, options.prefix === undefined ? {} : { prefix: options.prefix });
  if (!connected) options.logger?.warn("Redis unreachable at start-up: the kv store answers UNAVAILABLE until it is back");
  return store;
}
