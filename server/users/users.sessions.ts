import { createHash, randomBytes } from "node:crypto";
import type { KvStore } from "../backends/kv/kv-store.js";

/**
 * Login sessions in the kv store. A token is `pst_` and 32 random bytes (256 bits), base64url; the
 * store keeps only its SHA-256 (the session id), so a dump of the store holds no usable token.
 *
 * - `session:<id>` holds the session (JSON), expiring at the earlier of its absolute end and, with
 *   an idle timeout, the last validation plus that timeout (each validation slides it, never past
 *   the absolute end).
 * - `user:sessions:<user_id>` is the set of the user's session ids, each member expiring with the
 *   absolute lifetime, for listing and revoking all.
 */
export interface LoginSession {
  readonly sessionId: string;
  readonly userId: string;
  /** ms since the epoch. */
  readonly createdAt: number;
  /** The absolute end, ms since the epoch. */
  readonly expiresAt: number;
  /** 0: none. */
  readonly idleTimeoutMs: number;
  readonly clientAddress: string;
  readonly userAgent: string;
}

export interface NewSession {
  readonly userId: string;
  readonly ttlMs: number;
  readonly idleTimeoutMs: number;
  readonly clientAddress: string;
  readonly userAgent: string;
}

export interface SessionStore {
  /** Starts a session; the token is returned once and never stored. */
  create(session: NewSession): Promise<{ token: string; session: LoginSession }>;
  /** The live session `token` stands for (sliding its idle timeout), or undefined. */
  validate(token: string): Promise<LoginSession | undefined>;
  /** Ends the session of `token`; false when there was none. */
  end(token: string): Promise<boolean>;
  /** The user's live sessions, newest first. */
  list(userId: string): Promise<LoginSession[]>;
  /** Ends the user's sessions (only `only`, or all but `except`); resolves to how many were live. */
  revoke(userId: string, filter?: { readonly only?: string; readonly except?: string }): Promise<number>;
}

const TOKEN_PREFIX = "pst_";
const TOKEN_FORMAT = /^pst_[A-Za-z0-9_-]{43}$/;

/** The session id of a token: its SHA-256, base64url. */
export function sessionIdOf(token: string): string {
  return createHash("sha256").update(token, "utf8").digest("base64url");
}

/** Whether `token` has the shape of a session token (anything else cannot be one: no store read needed). */
export function isTokenShaped(token: string): boolean {
  return TOKEN_FORMAT.test(token);
}

export function createSessionStore(kv: KvStore, now: () => number = Date.now): SessionStore {
  const sessionKey = (id: string) => `session:${id}`;
  const userKey = (userId: string) => `user:sessions:${userId}`;
  const ttlOf = (s: LoginSession, at: number) => Math.min(s.expiresAt - at, s.idleTimeoutMs > 0 ? s.idleTimeoutMs : Number.POSITIVE_INFINITY);
  const read = async (id: string): Promise<LoginSession | undefined> => {
    const raw = await kv.get(sessionKey(id));
    if (raw === undefined) return undefined;
    const s = JSON.parse(raw) as LoginSession;
    return s.expiresAt > now() ? s : undefined;
  };
  const endAll = async (userId: string, ids: readonly string[]) => {
    if (ids.length === 0) return 0;
    const live = await kv.getMany(ids.map(sessionKey));
    await kv.delete(...ids.map(sessionKey));
    await kv.setRemove(userKey(userId), ids);
    return live.filter((v) => v !== undefined).length;
  };

  return {
    async create(input) {
      const token = TOKEN_PREFIX + randomBytes(32).toString("base64url");
      const at = now();
      const session: LoginSession = {
        sessionId: sessionIdOf(token),
        userId: input.userId,
        createdAt: at,
        expiresAt: at + input.ttlMs,
        idleTimeoutMs: Math.min(input.idleTimeoutMs, input.ttlMs),
        clientAddress: input.clientAddress,
        userAgent: input.userAgent,
      };
      // The set first: a session is never live without being listed (so revoking all finds it).
      await kv.setAdd(userKey(input.userId), session.sessionId, { ttlMs: input.ttlMs });
      await kv.set(sessionKey(session.sessionId), JSON.stringify(session), { ttlMs: ttlOf(session, at) });
      return { token, session };
    },
    async validate(token) {
      if (!isTokenShaped(token)) return undefined;
      const session = await read(sessionIdOf(token));
      if (!session) return undefined;
      if (session.idleTimeoutMs > 0) {
        const ttl = ttlOf(session, now());
        // Gone meanwhile (revoked, or idle past its timeout): not valid.
        if (ttl <= 0 || !(await kv.expire(sessionKey(session.sessionId), ttl))) return undefined;
      }
      return session;
    },
    async end(token) {
      if (!isTokenShaped(token)) return false;
      const id = sessionIdOf(token);
      const session = await read(id);
      await kv.delete(sessionKey(id));
      if (session) await kv.setRemove(userKey(session.userId), id);
      return session !== undefined;
    },
    async list(userId) {
      const ids = await kv.setMembers(userKey(userId));
      if (ids.length === 0) return [];
      const raws = await kv.getMany(ids.map(sessionKey));
      const at = now();
      const sessions: LoginSession[] = [];
      const gone: string[] = [];
      raws.forEach((raw, i) => {
        const s = raw === undefined ? undefined : (JSON.parse(raw) as LoginSession);
        if (s && s.expiresAt > at) sessions.push(s);
        else gone.push(ids[i]!);
      });
      // Members whose session timed out idle: tidy the set.
      if (gone.length > 0) await kv.setRemove(userKey(userId), gone);
      return sessions.sort((a, b) => b.createdAt - a.createdAt || a.sessionId.localeCompare(b.sessionId));
    },
    async revoke(userId, filter = {}) {
      const ids = await kv.setMembers(userKey(userId));
      const chosen = ids.filter((id) => (filter.only === undefined || id === filter.only) && id !== filter.except);
      const revoked = await endAll(userId, chosen);
      if (filter.only === undefined && filter.except === undefined) await kv.delete(userKey(userId));
      return revoked;
    },
  };
}
