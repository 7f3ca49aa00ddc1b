import { randomBytes } from "node:crypto";
import { Redis } from "ioredis";
import { sql } from "kysely";
import { openServiceSql } from "../../../server/schema";
import type { Dialect } from "../../support/sql-targets";

/** Redis for the MariaDB half of the users suites (`TEST_REDIS_URL` overrides). */
export const REDIS_URL = process.env.TEST_REDIS_URL ?? "redis://127.0.0.1:6379";
/** NATS for the suites with two instances (`TEST_NATS_URL` overrides). */
export const NATS_URL = process.env.TEST_NATS_URL ?? "nats://127.0.0.1:4222";
/** The service's own prefix before every Redis key. */
const SERVICE_PREFIX = "persistence:";

/**
 * The settings of a users suite: SQLite with the SQL kv, or MariaDB with Redis; a key prefix of the
 * run's own (so parallel runs never share sessions, caches or login limits); cheap password hashes.
 */
export function usersEnv(dialect: Dialect, sqlUrl: string, extra: Record<string, string> = {}) {
  const keyPrefix = `t${randomBytes(4).toString("hex")}:`;
  const accountBurst = 5;
  const vars: Record<string, string> = {
    PERSISTENCE_SQL_URL: sqlUrl,
    PERSISTENCE_USERS_KEY_PREFIX: keyPrefix,
    PERSISTENCE_USERS_SCRYPT_LOG2N: "10",
    PERSISTENCE_USERS_LOGIN_ACCOUNT_BURST: String(accountBurst),
    PERSISTENCE_USERS_LOGIN_ADDRESS_BURST: "100000",
    PERSISTENCE_USERS_LOGIN_ADDRESS_PER_MINUTE: "100000",
    ...(dialect === "mysql" ? { PERSISTENCE_REDIS_URL: REDIS_URL } : {}),
    ...extra,
  };

  /** Every live key and value the users module keeps in the kv store (SQL kv table or Redis). */
  const dump = async (): Promise<{ key: string; value: string }[]> => {
    if (dialect === "mysql") {
      const redis = new Redis(REDIS_URL);
      try {
        const found: { key: string; value: string }[] = [];
        for await (const keys of redis.scanStream({ match: `${SERVICE_PREFIX}${keyPrefix}*`, count: 500 })) {
          for (const key of keys as string[]) {
            const type = await redis.type(key);
            const value = type === "string" ? ((await redis.get(key)) ?? "") : type === "zset" ? (await redis.zrange(key, "0", "-1")).join(",") : (await redis.smembers(key).catch(() => [])).join(",");
            found.push({ key, value });
          }
        }
        return found;
      } finally {
        redis.disconnect();
      }
    }
    const store = await openServiceSql(sqlUrl);
    try {
      const now = Date.now() * 1000;
      const entries = await sql<{ k: string; v: string }>`select k, v from kv_entries where k like ${`${keyPrefix}%`} and (expires_at is null or expires_at > ${now})`.execute(store.db);
      const members = await sql<{ k: string; member: string }>`select k, member from kv_members where k like ${`${keyPrefix}%`} and (expires_at is null or expires_at > ${now})`.execute(store.db);
      return [...entries.rows.map((r) => ({ key: String(r.k), value: String(r.v) })), ...members.rows.map((r) => ({ key: String(r.k), value: String(r.member) }))];
    } finally {
      await store.close();
    }
  };

  return {
    vars,
    keyPrefix,
    accountBurst,
    dump,
    /** The values of the kv entries whose key names `id`. */
    async kvValuesFor(id: string): Promise<string[]> {
      return (await dump()).filter((e) => e.key.includes(id)).map((e) => e.value);
    },
    /** Removes what the run left in Redis. */
    async cleanup(): Promise<void> {
      if (dialect !== "mysql") return;
      const redis = new Redis(REDIS_URL);
      try {
        for await (const keys of redis.scanStream({ match: `${SERVICE_PREFIX}${keyPrefix}*`, count: 500 })) {
          if ((keys as string[]).length > 0) await redis.unlink(...(keys as string[]));
        }
      } finally {
        redis.disconnect();
      }
    },
  };
}
