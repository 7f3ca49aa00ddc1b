import { UserService } from "../../gen/persistence/v1/users_pb.js";
import { defineModule, implement } from "../platform/module.js";
import { integer } from "../platform/settings.js";
import { USERS_MIGRATIONS } from "./migrations/index.js";
import { createCache } from "./users.cache.js";
import { createUsersHandler } from "./users.handler.js";
import { createPasswords, OWASP_COST } from "./users.passwords.js";
import { createUsersService, type UsersService, type UsersSettings } from "./users.service.js";
import { createSessionStore } from "./users.sessions.js";
import type { UsersTables } from "./users.table.js";

/** What the users module offers other modules. */
export interface UsersExports {
  readonly service: UsersService;
}

const DAY_MS = 86_400_000;
const KEY_PREFIX = /^[A-Za-z0-9._:-]{0,64}$/;

/** Users (SQL), their preferences (SQL, cached in kv) and quotas, login sessions (kv), and the hot-read cache. */
export const usersModule = defineModule({
  name: "users",
  services: [{ desc: UserService, needs: ["sql", "kv", "events"] }],
  needs: ["sql", "kv", "events"],
  migrations: USERS_MIGRATIONS,
  settings: {
    read: (r): UsersSettings => ({
      sessionTtlMs: r.get("users_session_ttl_ms", DAY_MS, integer(1000, 366 * DAY_MS), "milliseconds from 1000 to a year"),
      sessionIdleTimeoutMs: r.get("users_session_idle_timeout_ms", 0, integer(0, 366 * DAY_MS), "milliseconds from 0 (none) to a year"),
      cacheTtlMs: r.get("users_cache_ttl_ms", 600_000, integer(1000, 30 * DAY_MS), "milliseconds from 1000 to 30 days"),
      preferencesTtlMs: r.get("users_preferences_ttl_ms", 7 * DAY_MS, integer(1000, 366 * DAY_MS), "milliseconds from 1000 to a year"),
      cacheLocalTtlMs: r.get("users_cache_local_ttl_ms", 10_000, integer(0, 3_600_000), "milliseconds from 0 (off) to an hour"),
      cacheLocalMaxEntries: r.get("users_cache_local_max_entries", 10_000, integer(1, 10_000_000), "an integer from 1 to 10000000"),
      cacheNegativeTtlMs: r.get("users_cache_negative_ttl_ms", 5_000, integer(1, 600_000), "milliseconds from 1 to 600000"),
      scryptLog2N: r.get("users_scrypt_log2n", OWASP_COST.log2N, integer(10, 20), "an integer from 10 to 20 (log2 of scrypt's N)"),
      loginAccountBurst: r.get("users_login_account_burst", 10, integer(1, 1_000_000), "an integer from 1 to 1000000"),
      loginAccountPerMinute: r.get("users_login_account_per_minute", 2, integer(1, 1_000_000), "an integer from 1 to 1000000"),
      loginAddressBurst: r.get("users_login_address_burst", 50, integer(1, 1_000_000), "an integer from 1 to 1000000"),
      loginAddressPerMinute: r.get("users_login_address_per_minute", 60, integer(1, 1_000_000), "an integer from 1 to 1000000"),
      defaultTranslationsQuota: r.get("users_default_translations_quota", 10_000, integer(0, Number.MAX_SAFE_INTEGER), "an integer >= 0"),
      defaultStorageQuotaBytes: r.get("users_default_storage_quota_bytes", 1024 ** 3, integer(0, Number.MAX_SAFE_INTEGER), "an integer >= 0"),
      keyPrefix: r.get("users_key_prefix", "", (raw) => (KEY_PREFIX.test(raw) ? raw : undefined), "at most 64 characters of [A-Za-z0-9._:-]"),
    }),
    show: (s: UsersSettings) => ({
      users_session_ttl_ms: s.sessionTtlMs,
      users_session_idle_timeout_ms: s.sessionIdleTimeoutMs,
      users_cache_ttl_ms: s.cacheTtlMs,
      users_preferences_ttl_ms: s.preferencesTtlMs,
      users_cache_local_ttl_ms: s.cacheLocalTtlMs,
      users_cache_local_max_entries: s.cacheLocalMaxEntries,
      users_cache_negative_ttl_ms: s.cacheNegativeTtlMs,
      users_scrypt_log2n: s.scryptLog2N,
      users_login_account_burst: s.loginAccountBurst,
      users_login_account_per_minute: s.loginAccountPerMinute,
      users_login_address_burst: s.loginAddressBurst,
      users_login_address_per_minute: s.loginAddressPerMinute,
      users_default_translations_quota: s.defaultTranslationsQuota,
      users_default_storage_quota_bytes: s.defaultStorageQuotaBytes,
      users_key_prefix: s.keyPrefix,
    }),
  },
  async start(ctx) {
    const { sql, events } = ctx.backends;
    const { settings } = ctx;
    const kv = settings.keyPrefix === "" ? ctx.backends.kv : ctx.backends.kv.scoped(settings.keyPrefix);
    const cache = createCache({
      kv,
      events,
      registry: ctx.registry,
      logger: ctx.logger,
      localTtlMs: settings.cacheLocalTtlMs,
      localMaxEntries: settings.cacheLocalMaxEntries,
      negativeTtlMs: settings.cacheNegativeTtlMs,
      holdOffMs: 1000,
      invalidateTimeoutMs: 1000,
      topic: "users.cache.invalidate",
    });
    await cache.start();
    const service = createUsersService({
      db: sql.db.withTables<UsersTables>(),
      mysql: sql.dialect === "mysql",
      kv,
      sessions: createSessionStore(kv),
      cache,
      passwords: createPasswords({ ...OWASP_COST, log2N: settings.scryptLog2N }),
      settings,
      logger: ctx.logger,
    });
    return {
      services: [implement(UserService, createUsersHandler(service))],
      exports: { service } satisfies UsersExports,
      stop: () => cache.stop(),
    };
  },
});
