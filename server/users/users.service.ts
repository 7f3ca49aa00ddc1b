import { randomUUID } from "node:crypto";
import { Code, ConnectError } from "@connectrpc/connect";
import type { Updateable } from "kysely";
import type { KvStore } from "../backends/kv/kv-store.js";
import { invalidArgument, notFound, resourceExhausted, tooLarge, type FieldViolation } from "../core/errors.js";
import type { Logger } from "../core/logger.js";
import type { Cache, CacheNamespace } from "./users.cache.js";
import type { Passwords } from "./users.passwords.js";
import * as repo from "./users.repository.js";
import type { LoginSession, SessionStore } from "./users.sessions.js";
import type { PreferencesRow, UserRow } from "./users.table.js";

export type UserStatus = "active" | "disabled";
export type QuotaKind = "translations" | "storage_bytes";

/** A user as callers see it: never its password hash. Times in ms since the epoch. */
export interface User {
  readonly userId: string;
  readonly username: string;
  readonly email: string;
  readonly displayName: string;
  readonly status: UserStatus;
  readonly createdAt: number;
  readonly updatedAt: number;
}

/** JSON objects as stored. */
export type JsonObject = Record<string, unknown>;

export interface Preferences {
  readonly userId: string;
  readonly language: string;
  readonly theme: string;
  readonly notifications: JsonObject;
  readonly custom: JsonObject;
  /** ms since the epoch; undefined when nothing was ever stored. */
  readonly updatedAt: number | undefined;
}

export interface QuotaCounter {
  readonly used: number;
  readonly limit: number;
  readonly remaining: number;
  /** ms since the epoch; undefined for quotas that do not reset. */
  readonly resetsAt: number | undefined;
}

export interface Quota {
  readonly userId: string;
  readonly translations: QuotaCounter;
  readonly storageBytes: QuotaCounter;
}

export interface NewUser {
  readonly username: string;
  readonly email: string;
  readonly password: string;
  readonly displayName: string;
  readonly status: UserStatus | undefined;
  readonly limits: { readonly translations?: number | undefined; readonly storageBytes?: number | undefined };
}

export interface UserChanges {
  readonly username?: string | undefined;
  readonly email?: string | undefined;
  readonly displayName?: string | undefined;
  readonly password?: string | undefined;
  readonly status?: UserStatus | undefined;
  readonly limits: { readonly translations?: number | undefined; readonly storageBytes?: number | undefined };
}

export interface PreferenceChanges {
  readonly language?: string | undefined;
  readonly theme?: string | undefined;
  /** Keys to merge; a null value removes its key. */
  readonly notifications?: JsonObject | undefined;
  readonly custom?: JsonObject | undefined;
  readonly clear: readonly string[];
}

/** How to log in: credentials, or a user the caller vouches for. */
export type LoginRequest =
  | { readonly by: "password"; readonly username: string; readonly email: string; readonly password: string }
  | { readonly by: "user_id"; readonly userId: string };

export interface LoginOptions {
  readonly ttlSeconds: number;
  readonly idleTimeoutSeconds: number;
  readonly clientAddress: string;
  readonly userAgent: string;
}

export interface UsersSettings {
  /** Absolute lifetime of a login session, in ms (`PERSISTENCE_USERS_SESSION_TTL_MS`, default 24 h). */
  readonly sessionTtlMs: number;
  /** Default idle timeout of a login session, in ms; 0: none (`PERSISTENCE_USERS_SESSION_IDLE_TIMEOUT_MS`, default 0). */
  readonly sessionIdleTimeoutMs: number;
  /** Lifetime of cached users in the kv store, in ms (`PERSISTENCE_USERS_CACHE_TTL_MS`, default 10 min). */
  readonly cacheTtlMs: number;
  /** Lifetime of cached preferences in the kv store, in ms (`PERSISTENCE_USERS_PREFERENCES_TTL_MS`, default 7 days). */
  readonly preferencesTtlMs: number;
  /** Lifetime of the in-process copies, in ms; 0: none (`PERSISTENCE_USERS_CACHE_LOCAL_TTL_MS`, default 10 s). */
  readonly cacheLocalTtlMs: number;
  /** Most in-process copies (`PERSISTENCE_USERS_CACHE_LOCAL_MAX_ENTRIES`, default 10000). */
  readonly cacheLocalMaxEntries: number;
  /** Lifetime of a cached "no such user", in ms (`PERSISTENCE_USERS_CACHE_NEGATIVE_TTL_MS`, default 5 s). */
  readonly cacheNegativeTtlMs: number;
  /** log2 of scrypt's N for new password hashes (`PERSISTENCE_USERS_SCRYPT_LOG2N`, default 14, with r=8 p=5). */
  readonly scryptLog2N: number;
  /** Login attempts per account: a burst, then this many per minute (`PERSISTENCE_USERS_LOGIN_ACCOUNT_BURST` 10, `..._PER_MINUTE` 2). */
  readonly loginAccountBurst: number;
  readonly loginAccountPerMinute: number;
  /** Login attempts per client address (`PERSISTENCE_USERS_LOGIN_ADDRESS_BURST` 50, `..._PER_MINUTE` 60). */
  readonly loginAddressBurst: number;
  readonly loginAddressPerMinute: number;
  /** Quota limits of users created without their own (`PERSISTENCE_USERS_DEFAULT_TRANSLATIONS_QUOTA` 10000 a month, `..._STORAGE_QUOTA_BYTES` 1 GiB). */
  readonly defaultTranslationsQuota: number;
  readonly defaultStorageQuotaBytes: number;
  /** Put before every key this module keeps in the kv store (`PERSISTENCE_USERS_KEY_PREFIX`, default none). */
  readonly keyPrefix: string;
}

export interface UsersServiceOptions {
  readonly db: repo.UsersDb;
  readonly mysql: boolean;
  readonly kv: KvStore;
  readonly sessions: SessionStore;
  readonly cache: Cache;
  readonly passwords: Passwords;
  readonly settings: UsersSettings;
  readonly logger: Logger;
}

export interface UsersService {
  createUser(input: NewUser): Promise<User>;
  getUser(userId: string): Promise<User>;
  updateUser(userId: string, changes: UserChanges): Promise<User>;
  deleteUser(userId: string): Promise<{ revokedSessions: number }>;
  getPreferences(userId: string): Promise<Preferences>;
  updatePreferences(userId: string, changes: PreferenceChanges): Promise<Preferences>;
  getQuota(userId: string): Promise<Quota>;
  consumeQuota(userId: string, kind: QuotaKind, amount: number): Promise<QuotaCounter>;
  login(request: LoginRequest, options: LoginOptions): Promise<{ token: string; session: LoginSession; user: User }>;
  validateSession(token: string): Promise<{ session: LoginSession; user: User }>;
  logout(token: string): Promise<boolean>;
  listSessions(userId: string): Promise<LoginSession[]>;
  revokeSessions(userId: string, filter: { readonly only?: string; readonly except?: string }): Promise<number>;
  exportUser(userId: string): Promise<{ user: User; preferences: Preferences; quota: Quota; sessions: LoginSession[] }>;
}

const USERNAME = /^[A-Za-z0-9._-]{3,64}$/;
const EMAIL = /^[^\s@]{1,64}@[^\s@]+\.[^\s@]+$/;
const LANGUAGE = /^[A-Za-z]{2,8}(-[A-Za-z0-9]{1,8})*$/;
const USER_ID = /^[A-Za-z0-9-]{1,36}$/;
const MAX_PREFERENCES_BYTES = 64 * 1024;
/** The one answer to a failed login, whatever failed: an unknown user, a wrong password or a disabled account. */
const LOGIN_FAILED = "invalid username, email or password";
const SESSION_INVALID = "login session not found: unknown, expired or revoked";

export function createUsersService(options: UsersServiceOptions): UsersService {
  const { db, sessions, passwords, settings, logger } = options;
  const users: CacheNamespace<User> = options.cache.namespace("users", { prefix: "cache:user:", ttlMs: settings.cacheTtlMs });
  const prefs: CacheNamespace<Preferences> = options.cache.namespace("preferences", { prefix: "user:pref:", ttlMs: settings.preferencesTtlMs });
  const limits = options.kv.scoped("login:");

  const cachedUser = (userId: string) =>
    USER_ID.test(userId)
      ? users.get(userId, async () => {
          const row = await repo.findUserById(db, userId);
          return row ? userOf(row) : undefined;
        })
      : Promise.resolve(undefined);
  const existingUser = async (userId: string): Promise<User> => {
    checkUserId(userId);
    const user = await cachedUser(userId);
    if (!user) throw notFound("user", userId);
    return user;
  };
  const fresh = async (userId: string): Promise<UserRow> => {
    const row = await repo.findUserById(db, userId);
    if (!row) throw notFound("user", userId);
    return row;
  };

  const takeAttempt = async (bucket: string, burst: number, perMinute: number, what: string) => {
    const { allowed, retryAfterMs } = await limits.take(bucket, perMinute / 60, burst);
    if (!allowed) throw resourceExhausted(`too many login attempts ${what}; try again later`, retryAfterMs);
  };

  const startSession = async (user: User, options: LoginOptions) => {
    if (options.ttlSeconds < 0 || options.idleTimeoutSeconds < 0) {
      throw invalidArgument([
        ...(options.ttlSeconds < 0 ? [{ field: "ttl_seconds", description: "must be >= 0" }] : []),
        ...(options.idleTimeoutSeconds < 0 ? [{ field: "idle_timeout_seconds", description: "must be >= 0" }] : []),
      ]);
    }
    const ttlMs = options.ttlSeconds > 0 ? Math.min(options.ttlSeconds * 1000, settings.sessionTtlMs) : settings.sessionTtlMs;
    const idleTimeoutMs = options.idleTimeoutSeconds > 0 ? options.idleTimeoutSeconds * 1000 : settings.sessionIdleTimeoutMs;
    const { token, session } = await sessions.create({ userId: user.userId, ttlMs, idleTimeoutMs, clientAddress: options.clientAddress, userAgent: options.userAgent });
    return { token, session, user };
  };

  return {
    async createUser(input) {
      const violations = [
        ...usernameViolations(input.username, "username"),
        ...emailViolations(input.email, "email"),
        ...passwordViolations(input.password, "password"),
        ...displayNameViolations(input.displayName, "display_name"),
        ...limitViolations(input.limits),
      ];
      if (violations.length > 0) throw invalidArgument(violations);
      const usernameKey = input.username.toLowerCase();
      const emailKey = input.email.toLowerCase();
      await refuseTaken(db, usernameKey, emailKey);
      const at = Date.now() * 1000;
      const row: UserRow = {
        user_id: randomUUID(),
        username: input.username,
        username_key: usernameKey,
        email: input.email,
        email_key: emailKey,
        display_name: input.displayName,
        status: input.status ?? "active",
        password_hash: await passwords.hash(input.password),
        translations_used: 0,
        translations_limit: input.limits.translations ?? settings.defaultTranslationsQuota,
        translations_period: monthOf(Date.now()),
        storage_bytes_used: 0,
        storage_bytes_limit: input.limits.storageBytes ?? settings.defaultStorageQuotaBytes,
        created_at: at,
        updated_at: at,
      };
      try {
        await repo.insertUser(db, row);
      } catch (err) {
        if (repo.isUniqueViolation(err)) await refuseTaken(db, usernameKey, emailKey, "", true);
        throw err;
      }
      return userOf(row);
    },

    getUser: existingUser,

    async updateUser(userId, changes) {
      checkUserId(userId);
      const violations = [
        ...(changes.username !== undefined ? usernameViolations(changes.username, "username") : []),
        ...(changes.email !== undefined ? emailViolations(changes.email, "email") : []),
        ...(changes.password !== undefined ? passwordViolations(changes.password, "password") : []),
        ...(changes.displayName !== undefined ? displayNameViolations(changes.displayName, "display_name") : []),
        ...limitViolations(changes.limits),
      ];
      if (violations.length > 0) throw invalidArgument(violations);
      const set: Updateable<UserRow> = { updated_at: Date.now() * 1000 };
      if (changes.username !== undefined) Object.assign(set, { username: changes.username, username_key: changes.username.toLowerCase() });
      if (changes.email !== undefined) Object.assign(set, { email: changes.email, email_key: changes.email.toLowerCase() });
      if (changes.displayName !== undefined) set.display_name = changes.displayName;
      if (changes.status !== undefined) set.status = changes.status;
      if (changes.limits.translations !== undefined) set.translations_limit = changes.limits.translations;
      if (changes.limits.storageBytes !== undefined) set.storage_bytes_limit = changes.limits.storageBytes;
      if (changes.password !== undefined) set.password_hash = await passwords.hash(changes.password);
      await refuseTaken(db, set.username_key as string | undefined, set.email_key as string | undefined, userId);
      let found: boolean;
      try {
        found = await repo.updateUser(db, userId, set);
      } catch (err) {
        if (repo.isUniqueViolation(err)) await refuseTaken(db, set.username_key as string | undefined, set.email_key as string | undefined, userId, true);
        throw err;
      }
      if (!found) throw notFound("user", userId);
      await users.invalidate(userId);
      // A new password or a disabled account ends every session at once.
      if (changes.password !== undefined || changes.status === "disabled") await sessions.revoke(userId);
      return userOf(await fresh(userId));
    },

    async deleteUser(userId) {
      checkUserId(userId);
      const existed = await repo.deleteUser(db, userId);
      // Whatever the database said, leave nothing behind (a retried delete finishes a half-done one).
      const revokedSessions = await sessions.revoke(userId);
      await users.invalidate(userId);
      await prefs.invalidate(userId);
      if (!existed) throw notFound("user", userId);
      return { revokedSessions };
    },

    async getPreferences(userId) {
      await existingUser(userId);
      const found = await prefs.get(userId, async () => preferencesOf(userId, await repo.findPreferences(db, userId)));
      return found ?? preferencesOf(userId, undefined);
    },

    async updatePreferences(userId, changes) {
      checkUserId(userId);
      const violations: FieldViolation[] = [];
      if (changes.language !== undefined && changes.language !== "" && (changes.language.length > 35 || !LANGUAGE.test(changes.language))) {
        violations.push({ field: "language", description: "must be a BCP 47 language tag such as ja-JP (at most 35 characters)" });
      }
      if (changes.theme !== undefined && [...changes.theme].length > 64) violations.push({ field: "theme", description: "must be at most 64 characters" });
      changes.clear.forEach((name, i) => {
        if (!["language", "theme", "notifications", "custom"].includes(name)) violations.push({ field: `clear_fields[${i}]`, description: "must be language, theme, notifications or custom" });
      });
      if (violations.length > 0) throw invalidArgument(violations);
      await fresh(userId);
      const stored = preferencesOf(userId, await repo.findPreferences(db, userId));
      const cleared = (name: string) => changes.clear.includes(name);
      const merge = (base: JsonObject, patch: JsonObject | undefined) => {
        const next = { ...base };
        for (const [k, v] of Object.entries(patch ?? {})) {
          if (v === null) delete next[k];
          else next[k] = v;
        }
        return next;
      };
      const row: PreferencesRow = {
        user_id: userId,
        language: nullIfEmpty(cleared("language") ? "" : (changes.language ?? stored.language)),
        theme: nullIfEmpty(cleared("theme") ? "" : (changes.theme ?? stored.theme)),
        notifications: JSON.stringify(merge(cleared("notifications") ? {} : stored.notifications, changes.notifications)),
        custom: JSON.stringify(merge(cleared("custom") ? {} : stored.custom, changes.custom)),
        updated_at: Date.now() * 1000,
      };
      const size = Buffer.byteLength(row.notifications ?? "") + Buffer.byteLength(row.custom ?? "");
      if (size > MAX_PREFERENCES_BYTES) throw tooLarge(`preferences would take ${size} bytes; at most ${MAX_PREFERENCES_BYTES} are kept per user`);
      await repo.upsertPreferences(db, row, options.mysql);
      await prefs.invalidate(userId);
      return preferencesOf(userId, row);
    },

    async getQuota(userId) {
      checkUserId(userId);
      return quotaOf(await fresh(userId), Date.now());
    },

    async consumeQuota(userId, kind, amount) {
      checkUserId(userId);
      if (!Number.isSafeInteger(amount) || amount === 0) throw invalidArgument([{ field: "amount", description: "must be a non-zero integer (negative gives back)" }]);
      const now = Date.now();
      if (amount > 0) {
        if (!(await repo.consumeQuota(db, userId, kind, amount, monthOf(now)))) {
          const quota = quotaOf(await fresh(userId), now);
          const counter = kind === "translations" ? quota.translations : quota.storageBytes;
          const resets = counter.resetsAt === undefined ? "" : `; it starts again at ${new Date(counter.resetsAt).toISOString()}`;
          // No retry delay: trying again soon cannot help (the monthly quota comes back at the turn of
          // the month, the storage quota when something is given back), so clients should not wait for it.
          throw new ConnectError(`${kind} quota exceeded: ${amount} asked, ${counter.remaining} of ${counter.limit} left${resets}`, Code.ResourceExhausted);
        }
      } else {
        await fresh(userId);
        await repo.releaseQuota(db, userId, kind, -amount, monthOf(now));
      }
      const quota = quotaOf(await fresh(userId), now);
      return kind === "translations" ? quota.translations : quota.storageBytes;
    },

    async login(request, loginOptions) {
      if (request.by === "user_id") {
        checkUserId(request.userId);
        const row = await repo.findUserById(db, request.userId);
        if (!row) throw notFound("user", request.userId);
        if (row.status !== "active") throw new ConnectError(`user ${JSON.stringify(request.userId)} is disabled`, Code.FailedPrecondition);
        return startSession(userOf(row), loginOptions);
      }
      const { username, email, password } = request;
      const violations: FieldViolation[] = [];
      if ((username === "") === (email === "")) violations.push({ field: username === "" ? "username" : "email", description: "give a username or an email (one of them), or a user_id" });
      if (password === "") violations.push({ field: "password", description: "is required with a username or email" });
      if ([...password].length > 1024) violations.push({ field: "password", description: "must be at most 1024 characters" });
      if (violations.length > 0) throw invalidArgument(violations);
      const by = username !== "" ? "username_key" : "email_key";
      const key = (username !== "" ? username : email).toLowerCase();
      // Counted before the password is checked, so guessing costs attempts whether or not the account exists.
      await takeAttempt(`address:${loginOptions.clientAddress || "unknown"}`, settings.loginAddressBurst, settings.loginAddressPerMinute, "from this address");
      await takeAttempt(`account:${key}`, settings.loginAccountBurst, settings.loginAccountPerMinute, "for this account");
      const row = key.length <= 254 ? await repo.findUserByLogin(db, by, key) : undefined;
      // An unknown user is checked against a dummy hash: the same work, the same answer.
      const matches = await passwords.verify(password, row?.password_hash);
      if (!row || !matches || row.status !== "active") throw new ConnectError(LOGIN_FAILED, Code.Unauthenticated);
      if (passwords.outdated(row.password_hash)) {
        // Stored with an older cost: store it again with the current one, now that the password is at hand.
        await repo.updateUser(db, row.user_id, { password_hash: await passwords.hash(password) }).catch((err: unknown) => {
          logger.warn({ err: (err as Error).message, user_id: row.user_id }, "could not re-hash a password with the current cost");
        });
      }
      return startSession(userOf(row), loginOptions);
    },

    async validateSession(token) {
      const session = await sessions.validate(token);
      if (!session) throw new ConnectError(SESSION_INVALID, Code.NotFound);
      const user = await cachedUser(session.userId);
      if (!user || user.status !== "active") {
        // The user went away or was disabled after this session started: it ends here.
        await sessions.end(token);
        throw new ConnectError(SESSION_INVALID, Code.NotFound);
      }
      return { session, user };
    },

    logout: (token) => sessions.end(token),

    async listSessions(userId) {
      await existingUser(userId);
      return sessions.list(userId);
    },

    async revokeSessions(userId, filter) {
      checkUserId(userId);
      return sessions.revoke(userId, filter);
    },

    async exportUser(userId) {
      checkUserId(userId);
      const row = await fresh(userId);
      const [preferences, list] = await Promise.all([repo.findPreferences(db, userId), sessions.list(userId)]);
      return { user: userOf(row), preferences: preferencesOf(userId, preferences), quota: quotaOf(row, Date.now()), sessions: list };
    },
  };
}

function checkUserId(userId: string): void {
  if (!USER_ID.test(userId)) throw invalidArgument([{ field: "user_id", description: "must be 1-36 characters of [A-Za-z0-9-] (a UUID)" }]);
}

/** ALREADY_EXISTS (409) naming what is taken; with `always`, even when the check finds nothing (a unique violation raced it). */
async function refuseTaken(db: repo.UsersDb, usernameKey: string | undefined, emailKey: string | undefined, exceptUserId = "", always = false): Promise<void> {
  const taken = await repo.takenBy(db, usernameKey, emailKey, exceptUserId);
  const names = [...(taken.username ? ["username"] : []), ...(taken.email ? ["email"] : [])];
  if (names.length > 0 || always) throw new ConnectError(`${names.length > 0 ? names.join(" and ") : "username or email"} already taken`, Code.AlreadyExists);
}

function usernameViolations(value: string, field: string): FieldViolation[] {
  return USERNAME.test(value) ? [] : [{ field, description: "must be 3-64 characters of [A-Za-z0-9._-]" }];
}

function emailViolations(value: string, field: string): FieldViolation[] {
  return value.length <= 254 && EMAIL.test(value) ? [] : [{ field, description: "must be an email address (at most 254 characters)" }];
}

function passwordViolations(value: string, field: string): FieldViolation[] {
  const length = [...value].length;
  return length >= 8 && length <= 1024 ? [] : [{ field, description: "must be 8-1024 characters" }];
}

function displayNameViolations(value: string, field: string): FieldViolation[] {
  return [...value].length <= 255 ? [] : [{ field, description: "must be at most 255 characters" }];
}

function limitViolations(limits: { translations?: number | undefined; storageBytes?: number | undefined }): FieldViolation[] {
  const bad = (n: number | undefined) => n !== undefined && (!Number.isSafeInteger(n) || n < 0);
  return [
    ...(bad(limits.translations) ? [{ field: "quota_limits.translations", description: "must be an integer >= 0" }] : []),
    ...(bad(limits.storageBytes) ? [{ field: "quota_limits.storage_bytes", description: "must be an integer >= 0" }] : []),
  ];
}

function userOf(row: UserRow): User {
  return {
    userId: row.user_id,
    username: row.username,
    email: row.email,
    displayName: row.display_name,
    status: row.status === "disabled" ? "disabled" : "active",
    createdAt: Math.floor(Number(row.created_at) / 1000),
    updatedAt: Math.floor(Number(row.updated_at) / 1000),
  };
}

function preferencesOf(userId: string, row: PreferencesRow | undefined): Preferences {
  const object = (text: string | null | undefined): JsonObject => {
    const parsed: unknown = text ? JSON.parse(text) : {};
    return parsed && typeof parsed === "object" && !Array.isArray(parsed) ? (parsed as JsonObject) : {};
  };
  return {
    userId,
    language: row?.language ?? "",
    theme: row?.theme ?? "",
    notifications: object(row?.notifications),
    custom: object(row?.custom),
    updatedAt: row ? Math.floor(Number(row.updated_at) / 1000) : undefined,
  };
}

/** The month a time falls in, as yyyymm (UTC). */
export function monthOf(ms: number): number {
  const d = new Date(ms);
  return d.getUTCFullYear() * 100 + d.getUTCMonth() + 1;
}

function quotaOf(row: UserRow, now: number): Quota {
  const counter = (used: number, limit: number, resetsAt: number | undefined): QuotaCounter => ({ used, limit, remaining: Math.max(0, limit - used), resetsAt });
  const d = new Date(now);
  const nextMonth = Date.UTC(d.getUTCFullYear(), d.getUTCMonth() + 1, 1);
  const translationsUsed = Number(row.translations_period) < monthOf(now) ? 0 : Number(row.translations_used);
  return {
    userId: row.user_id,
    translations: counter(translationsUsed, Number(row.translations_limit), nextMonth),
    storageBytes: counter(Number(row.storage_bytes_used), Number(row.storage_bytes_limit), undefined),
  };
}

function nullIfEmpty(value: string): string | null {
  return value === "" ? null : value;
}
