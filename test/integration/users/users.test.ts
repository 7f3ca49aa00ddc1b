import { randomBytes } from "node:crypto";
import { Code } from "@connectrpc/connect";
import { SystemService } from "../../../gen/persistence/v1/system_pb";
import { QuotaKind, UserService, UserStatus } from "../../../gen/persistence/v1/users_pb";
import { errorOf } from "../../support/errors";
import { restCall } from "../../support/rest-call";
import { secret } from "../../support/secrets";
import { describeEachDialect } from "../../support/sql-targets";
import { startTestServer, type TestServer } from "../../support/test-server";
import { usersEnv } from "./users-env";

/** A user of its own for each test: unique names, a registered secret password. */
function newUser() {
  const tag = randomBytes(5).toString("hex");
  return { username: `user_${tag}`, email: `User.${tag}@Example.com`, password: secret(`pw-${randomBytes(9).toString("base64url")}`), displayName: `User ${tag}` };
}

describeEachDialect("users service", (target, dialect) => {
  let server: TestServer;
  let env: ReturnType<typeof usersEnv>;
  const client = () => server.client(UserService);

  beforeAll(async () => {
    env = usersEnv(dialect, target().url);
    server = await startTestServer(env.vars);
  });
  afterAll(async () => {
    await server?.close();
    await env?.cleanup();
  });

  describe("users", () => {
    it("creates a user over REST with the fixed body and never shows its password", async () => {
      const u = newUser();
      const reply = await restCall(server.url, "POST", "/api/v1/users", { username: u.username, email: u.email, password: u.password, display_name: u.displayName });
      expect(reply.status).toBe(200);
      expect(reply.json).toMatchObject({ username: u.username, email: u.email, display_name: u.displayName, status: "active" });
      expect(reply.json.user_id).toMatch(/^[0-9a-f-]{36}$/);
      expect(reply.text).not.toContain(u.password);
      expect(reply.text).not.toContain("scrypt");
      const got = await restCall(server.url, "GET", `/api/v1/users/${reply.json.user_id}`);
      expect(got.status).toBe(200);
      expect(got.json.username).toBe(u.username);
    });

    it("refuses a username or email already taken (ignoring case) with 409, naming which", async () => {
      const u = newUser();
      await client().createUser(u);
      const sameName = await restCall(server.url, "POST", "/api/v1/users", { ...newUser(), username: u.username.toUpperCase() });
      expect(sameName.status).toBe(409);
      expect(sameName.json.message).toContain("username");
      const sameEmail = await errorOf(client().createUser({ ...newUser(), email: u.email.toLowerCase() }));
      expect(sameEmail.code).toBe(Code.AlreadyExists);
      expect(sameEmail.rawMessage).toContain("email");
    });

    it("lets only one of two concurrent creations of the same username succeed", async () => {
      const u = newUser();
      const results = await Promise.allSettled([client().createUser(u), client().createUser({ ...newUser(), username: u.username })]);
      expect(results.filter((r) => r.status === "fulfilled")).toHaveLength(1);
      const failed = results.find((r) => r.status === "rejected") as PromiseRejectedResult;
      expect((await errorOf(Promise.reject(failed.reason))).code).toBe(Code.AlreadyExists);
    });

    it("names each invalid field and stores nothing", async () => {
      const u = newUser();
      const err = await errorOf(client().createUser({ username: "a", email: "not-an-email", password: "short", displayName: "x" }));
      expect(err.code).toBe(Code.InvalidArgument);
      for (const field of ["username", "email", "password"]) expect(err.rawMessage).toContain(field);
      const reply = await restCall(server.url, "POST", "/api/v1/users", { ...u, password: "short" });
      expect(reply.status).toBe(400);
      // The name is still free: nothing was stored.
      await expect(client().createUser(u)).resolves.toBeDefined();
    });

    it("updates the fields given and keeps the others", async () => {
      const { user } = await client().createUser(newUser());
      const reply = await restCall(server.url, "PATCH", `/api/v1/users/${user!.userId}`, { display_name: "Renamed" });
      expect(reply.status).toBe(200);
      expect(reply.json).toMatchObject({ display_name: "Renamed", username: user!.username, email: user!.email });
      const got = await client().getUser({ userId: user!.userId });
      expect(got.user?.displayName).toBe("Renamed");
    });

    it("answers 404 for an unknown user, also after it was looked up once (negative cache)", async () => {
      const id = "00000000-0000-4000-8000-000000000000";
      expect((await restCall(server.url, "GET", `/api/v1/users/${id}`)).status).toBe(404);
      expect((await errorOf(client().getUser({ userId: id }))).code).toBe(Code.NotFound);
    });
  });

  describe("the cache", () => {
    it("counts hits and misses, in /metrics and in GetMetrics", async () => {
      const { user } = await client().createUser(newUser());
      for (let i = 0; i < 5; i++) await client().getUser({ userId: user!.userId });
      const text = await (await fetch(`${server.url}/metrics`)).text();
      expect(text).toMatch(/persistence_cache_hits_total\{cache="users",tier="local"\} [1-9]/);
      expect(text).toMatch(/persistence_cache_misses_total\{cache="users"\} [1-9]/);
      const { caches } = await server.client(SystemService).getMetrics({});
      const users = caches.find((c) => c.name === "users");
      expect(users?.hits).toBeGreaterThanOrEqual(4n);
      expect(users?.hitRate).toBeGreaterThan(0);
      expect(users?.hitRate).toBeLessThan(100);
    });
  });

  describe("login sessions", () => {
    it("logs in with username or email and password, and validates the token", async () => {
      const u = newUser();
      const { user } = await client().createUser(u);
      const reply = await restCall(server.url, "POST", "/api/v1/users/sessions", { username: u.username, password: u.password });
      expect(reply.status).toBe(200);
      const token = secret(reply.json.session_token as string);
      expect(token).toMatch(/^pst_[A-Za-z0-9_-]{43}$/);
      expect(Buffer.from(token.slice(4), "base64url")).toHaveLength(32);
      expect(new Date(reply.json.expires_at).getTime()).toBeGreaterThan(Date.now() + 23 * 3600_000);
      const valid = await restCall(server.url, "GET", `/api/v1/users/sessions/${token}`);
      expect(valid.status).toBe(200);
      expect(valid.json).toMatchObject({ valid: true, user: { user_id: user!.userId }, session: { user_id: user!.userId } });

      const byEmail = await client().createSession({ email: u.email.toUpperCase(), password: u.password });
      secret(byEmail.sessionToken);
      expect(byEmail.user?.userId).toBe(user!.userId);
    });

    it("answers a wrong password and an unknown user with the same 401", async () => {
      const u = newUser();
      await client().createUser(u);
      const wrong = await restCall(server.url, "POST", "/api/v1/users/sessions", { username: u.username, password: `${u.password}x` });
      const unknown = await restCall(server.url, "POST", "/api/v1/users/sessions", { username: `${u.username}_nobody`, password: u.password });
      expect(wrong.status).toBe(401);
      expect(unknown.status).toBe(401);
      expect(wrong.json.message).toBe(unknown.json.message);
      expect(wrong.json.code).toBe(unknown.json.code);
    });

    it("logs out: the token is refused afterwards", async () => {
      const u = newUser();
      await client().createUser(u);
      const { sessionToken } = await client().createSession({ username: u.username, password: u.password });
      secret(sessionToken);
      const out = await restCall(server.url, "DELETE", `/api/v1/users/sessions/${sessionToken}`);
      expect(out.json.status).toBe("deleted");
      expect((await restCall(server.url, "GET", `/api/v1/users/sessions/${sessionToken}`)).status).toBe(404);
      expect((await client().deleteSession({ sessionToken })).status).toBe("not_found");
    });

    it("keeps no usable token and no password in the kv store, only the tokens' hashes", async () => {
      const u = newUser();
      await client().createUser(u);
      const tokens = [];
      for (let i = 0; i < 3; i++) tokens.push(secret((await client().createSession({ username: u.username, password: u.password })).sessionToken));
      const dump = JSON.stringify(await env.dump());
      for (const token of tokens) {
        expect(dump).not.toContain(token);
        expect(dump).not.toContain(token.slice(4));
        expect(dump).toContain((await client().validateSession({ sessionToken: token })).session!.sessionId);
      }
      expect(dump).not.toContain(u.password);
    });

    it("refuses tokens that were never issued, whatever their shape", async () => {
      for (const token of ["nope", `pst_${"A".repeat(43)}`, "pst_"]) {
        expect((await errorOf(client().validateSession({ sessionToken: token }))).code).toBe(Code.NotFound);
      }
    });

    it("logs in for a user_id the caller vouches for", async () => {
      const { user } = await client().createUser(newUser());
      const reply = await restCall(server.url, "POST", "/api/v1/users/sessions", { user_id: user!.userId });
      expect(reply.status).toBe(200);
      secret(reply.json.session_token as string);
      expect(reply.json.user.user_id).toBe(user!.userId);
    });

    it("lists a user's sessions without their tokens, revokes one, then all but one, then all", async () => {
      const u = newUser();
      const { user } = await client().createUser(u);
      const tokens: string[] = [];
      for (let i = 0; i < 4; i++) tokens.push(secret((await client().createSession({ username: u.username, password: u.password, userAgent: `agent ${i}` })).sessionToken));
      const listed = await restCall(server.url, "GET", `/api/v1/users/${user!.userId}/sessions`);
      expect(listed.json.count).toBe(4);
      for (const t of tokens) expect(listed.text).not.toContain(t);
      const ids = (listed.json.sessions as { session_id: string; user_agent: string }[]).map((s) => s.session_id);
      const first = (await client().validateSession({ sessionToken: tokens[0]! })).session!.sessionId;
      expect(ids).toContain(first);

      expect((await client().revokeUserSessions({ userId: user!.userId, sessionId: first })).revokedSessions).toBe(1);
      expect((await errorOf(client().validateSession({ sessionToken: tokens[0]! }))).code).toBe(Code.NotFound);
      const keep = (await client().validateSession({ sessionToken: tokens[1]! })).session!.sessionId;
      expect((await client().revokeUserSessions({ userId: user!.userId, exceptSessionId: keep })).revokedSessions).toBe(2);
      await expect(client().validateSession({ sessionToken: tokens[1]! })).resolves.toMatchObject({ valid: true });
      expect((await errorOf(client().validateSession({ sessionToken: tokens[2]! }))).code).toBe(Code.NotFound);
      const all = await restCall(server.url, "DELETE", `/api/v1/users/${user!.userId}/sessions`);
      expect(all.json.revoked_sessions).toBe(1);
      expect((await client().listUserSessions({ userId: user!.userId })).count).toBe(0);
    });

    it("ends every session when the password changes, and the new password logs in", async () => {
      const u = newUser();
      const { user } = await client().createUser(u);
      const { sessionToken } = await client().createSession({ username: u.username, password: u.password });
      secret(sessionToken);
      const next = secret(`new-${u.password}`);
      await client().updateUser({ userId: user!.userId, password: next });
      expect((await errorOf(client().validateSession({ sessionToken }))).code).toBe(Code.NotFound);
      expect((await errorOf(client().createSession({ username: u.username, password: u.password }))).code).toBe(Code.Unauthenticated);
      secret((await client().createSession({ username: u.username, password: next })).sessionToken);
    });

    it("refuses a disabled user's login with the same 401, and its sessions", async () => {
      const u = newUser();
      const { user } = await client().createUser(u);
      const { sessionToken } = await client().createSession({ username: u.username, password: u.password });
      secret(sessionToken);
      await client().updateUser({ userId: user!.userId, status: UserStatus.DISABLED });
      expect((await errorOf(client().validateSession({ sessionToken }))).code).toBe(Code.NotFound);
      const err = await errorOf(client().createSession({ username: u.username, password: u.password }));
      expect(err.code).toBe(Code.Unauthenticated);
    });

    it("ends a session with an idle timeout once it goes unused, and slides it while used", async () => {
      const u = newUser();
      await client().createUser(u);
      const { sessionToken, session } = await client().createSession({ username: u.username, password: u.password, idleTimeoutSeconds: 2 });
      secret(sessionToken);
      expect(session?.idleTimeoutSeconds).toBe(2);
      for (let i = 0; i < 3; i++) {
        await new Promise((r) => setTimeout(r, 1000));
        await expect(client().validateSession({ sessionToken })).resolves.toMatchObject({ valid: true });
      }
      await new Promise((r) => setTimeout(r, 2600));
      expect((await errorOf(client().validateSession({ sessionToken }))).code).toBe(Code.NotFound);
    });

    it("limits login attempts per account, whether the password is right or not", async () => {
      const u = newUser();
      await client().createUser(u);
      const codes: Code[] = [];
      for (let i = 0; i < env.accountBurst + 1; i++) codes.push((await errorOf(client().createSession({ username: u.username, password: "wrong-password" }))).code);
      expect(codes.slice(0, env.accountBurst).every((c) => c === Code.Unauthenticated)).toBe(true);
      expect(codes[env.accountBurst]).toBe(Code.ResourceExhausted);
      const reply = await restCall(server.url, "POST", "/api/v1/users/sessions", { username: u.username, password: u.password });
      expect(reply.status).toBe(429);
      expect(Number(reply.headers.get("retry-after"))).toBeGreaterThan(0);
    });
  });

  describe("preferences", () => {
    it("merges updates into the stored preferences and returns defaults before any", async () => {
      const { user } = await client().createUser(newUser());
      const path = `/api/v1/users/${user!.userId}/preferences`;
      const before = await restCall(server.url, "GET", path);
      expect(before.status).toBe(200);
      expect(before.json).toMatchObject({ language: "", theme: "" });
      await restCall(server.url, "PATCH", path, { language: "ja-JP", notifications: { email: true, sms: false }, custom: { layout: "grid" } });
      const patched = await restCall(server.url, "PATCH", path, { theme: "dark", notifications: { sms: null, push: true } });
      expect(patched.status).toBe(200);
      expect(patched.json).toMatchObject({ language: "ja-JP", theme: "dark", notifications: { email: true, push: true }, custom: { layout: "grid" } });
      expect(patched.json.notifications).not.toHaveProperty("sms");
      const got = await restCall(server.url, "GET", path);
      expect(got.json).toEqual(patched.json);
      const cleared = await client().updatePreferences({ userId: user!.userId, clearFields: ["custom", "language"] });
      expect(cleared.preferences).toMatchObject({ language: "", theme: "dark", custom: {} });
    });

    it("refuses a bad language tag, naming the field", async () => {
      const { user } = await client().createUser(newUser());
      const reply = await restCall(server.url, "PATCH", `/api/v1/users/${user!.userId}/preferences`, { language: "not a tag!" });
      expect(reply.status).toBe(400);
      expect(reply.json.message).toContain("language");
    });
  });

  describe("quotas", () => {
    it("consumes up to the limit and refuses past it with 429, using nothing", async () => {
      const { user } = await client().createUser({ ...newUser(), quotaLimits: { translations: 10n, storageBytes: 1000n } });
      const path = `/api/v1/users/${user!.userId}/quota`;
      const used = await restCall(server.url, "POST", `${path}/consume`, { kind: "translations", amount: 7 });
      expect(used.status).toBe(200);
      expect(used.json.quota).toMatchObject({ used: 7, limit: 10, remaining: 3 });
      const refused = await restCall(server.url, "POST", `${path}/consume`, { kind: "translations", amount: 4 });
      expect(refused.status).toBe(429);
      const quota = await restCall(server.url, "GET", path);
      expect(quota.json.translations).toMatchObject({ used: 7, remaining: 3 });
      expect(new Date(quota.json.translations.resets_at).getUTCDate()).toBe(1);
      const storage = await client().consumeQuota({ userId: user!.userId, kind: QuotaKind.STORAGE_BYTES, amount: 1000n });
      expect(storage.quota?.remaining).toBe(0n);
      const back = await client().consumeQuota({ userId: user!.userId, kind: QuotaKind.STORAGE_BYTES, amount: -400n });
      expect(back.quota?.used).toBe(600n);
    });

    it("never passes the limit under concurrent consumption", async () => {
      const { user } = await client().createUser({ ...newUser(), quotaLimits: { translations: 25n } });
      const results = await Promise.allSettled(Array.from({ length: 40 }, () => client().consumeQuota({ userId: user!.userId, kind: QuotaKind.TRANSLATIONS, amount: 1n })));
      expect(results.filter((r) => r.status === "fulfilled")).toHaveLength(25);
      expect((await client().getQuota({ userId: user!.userId })).translations?.used).toBe(25n);
    });
  });

  describe("export and delete", () => {
    it("exports everything held about a user as one JSON document", async () => {
      const u = newUser();
      const { user } = await client().createUser(u);
      await client().updatePreferences({ userId: user!.userId, theme: "light" });
      secret((await client().createSession({ username: u.username, password: u.password })).sessionToken);
      const reply = await restCall(server.url, "GET", `/api/v1/users/${user!.userId}/export`);
      expect(reply.status).toBe(200);
      expect(reply.json).toMatchObject({ user: { user_id: user!.userId, email: u.email }, preferences: { theme: "light" }, quota: { user_id: user!.userId } });
      expect(reply.json.sessions).toHaveLength(1);
      expect(reply.text).not.toContain(u.password);
      expect(reply.text).not.toContain("scrypt");
    });

    it("deletes a user: its sessions, preferences and cache entries go with it", async () => {
      const u = newUser();
      const { user } = await client().createUser(u);
      const id = user!.userId;
      await client().updatePreferences({ userId: id, theme: "dark" });
      await client().getPreferences({ userId: id });
      await client().getUser({ userId: id });
      const { sessionToken } = await client().createSession({ username: u.username, password: u.password });
      secret(sessionToken);
      const reply = await restCall(server.url, "DELETE", `/api/v1/users/${id}`);
      expect(reply.json).toMatchObject({ status: "deleted", user_id: id, revoked_sessions: 1 });
      expect((await errorOf(client().validateSession({ sessionToken }))).code).toBe(Code.NotFound);
      expect((await errorOf(client().getUser({ userId: id }))).code).toBe(Code.NotFound);
      expect((await errorOf(client().getPreferences({ userId: id }))).code).toBe(Code.NotFound);
      // Only the short "just written" markers of the cache remain, holding nothing about the user.
      expect((await env.kvValuesFor(id)).filter((v) => v !== '{"w":1}')).toEqual([]);
      // The name is free again.
      await expect(client().createUser(u)).resolves.toBeDefined();
    });
  });
});
