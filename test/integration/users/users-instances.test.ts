import { randomBytes } from "node:crypto";
import { Code } from "@connectrpc/connect";
import { QuotaKind, UserService } from "../../../gen/persistence/v1/users_pb";
import { errorOf } from "../../support/errors";
import { secret } from "../../support/secrets";
import { describeEachDialect } from "../../support/sql-targets";
import { startTestServer, type TestServer } from "../../support/test-server";
import { NATS_URL, usersEnv } from "./users-env";

function newUser() {
  const tag = randomBytes(5).toString("hex");
  return { username: `pair_${tag}`, email: `pair.${tag}@example.com`, password: secret(`pw-${randomBytes(9).toString("base64url")}`), displayName: `Pair ${tag}` };
}

/** Two instances over one database and one kv store, their caches kept in step through NATS. */
describeEachDialect("users across two instances", (target, dialect) => {
  let a: TestServer;
  let b: TestServer;
  let env: ReturnType<typeof usersEnv>;

  beforeAll(async () => {
    env = usersEnv(dialect, target().url, { PERSISTENCE_EVENTS_URL: NATS_URL });
    a = await startTestServer(env.vars);
    b = await startTestServer(env.vars);
  });
  afterAll(async () => {
    await a?.close();
    await b?.close();
    await env?.cleanup();
  });

  it("refuses on one instance at once a session logged out on the other", async () => {
    const u = newUser();
    await a.client(UserService).createUser(u);
    const { sessionToken } = await a.client(UserService).createSession({ username: u.username, password: u.password });
    secret(sessionToken);
    // B has the session and its user in its caches now.
    for (let i = 0; i < 3; i++) await expect(b.client(UserService).validateSession({ sessionToken })).resolves.toMatchObject({ valid: true });
    await a.client(UserService).deleteSession({ sessionToken });
    expect((await errorOf(b.client(UserService).validateSession({ sessionToken }))).code).toBe(Code.NotFound);
  });

  it("refuses on one instance at once the sessions of a user deleted on the other, and the user", async () => {
    const u = newUser();
    const { user } = await a.client(UserService).createUser(u);
    const { sessionToken } = await b.client(UserService).createSession({ username: u.username, password: u.password });
    secret(sessionToken);
    await b.client(UserService).validateSession({ sessionToken });
    await b.client(UserService).getUser({ userId: user!.userId });
    await a.client(UserService).deleteUser({ userId: user!.userId });
    expect((await errorOf(b.client(UserService).validateSession({ sessionToken }))).code).toBe(Code.NotFound);
    expect((await errorOf(b.client(UserService).getUser({ userId: user!.userId }))).code).toBe(Code.NotFound);
  });

  it("reads on one instance, fresh, a user and preferences updated on the other", async () => {
    const { user } = await a.client(UserService).createUser(newUser());
    const id = user!.userId;
    for (let i = 0; i < 3; i++) {
      expect((await b.client(UserService).getUser({ userId: id })).user?.displayName).toBe(user!.displayName);
      await b.client(UserService).getPreferences({ userId: id });
    }
    await a.client(UserService).updateUser({ userId: id, displayName: "Updated on A" });
    await a.client(UserService).updatePreferences({ userId: id, theme: "solarized" });
    expect((await b.client(UserService).getUser({ userId: id })).user?.displayName).toBe("Updated on A");
    expect((await b.client(UserService).getPreferences({ userId: id })).preferences?.theme).toBe("solarized");
  });

  it("never passes a quota's limit when both instances consume it at once", async () => {
    const { user } = await a.client(UserService).createUser({ ...newUser(), quotaLimits: { translations: 30n, storageBytes: 5000n } });
    const id = user!.userId;
    const consume = (server: TestServer, kind: QuotaKind, amount: bigint) => server.client(UserService).consumeQuota({ userId: id, kind, amount });
    const calls = Array.from({ length: 50 }, (_, i) => consume(i % 2 === 0 ? a : b, QuotaKind.TRANSLATIONS, 1n));
    const bytes = Array.from({ length: 20 }, (_, i) => consume(i % 2 === 0 ? b : a, QuotaKind.STORAGE_BYTES, 300n));
    const results = await Promise.allSettled([...calls, ...bytes]);
    const granted = results.slice(0, 50).filter((r) => r.status === "fulfilled").length;
    const grantedBytes = results.slice(50).filter((r) => r.status === "fulfilled").length;
    expect(granted).toBe(30);
    expect(grantedBytes).toBe(16);
    for (const r of results.filter((r) => r.status === "rejected")) expect((await errorOf(Promise.reject((r as PromiseRejectedResult).reason))).code).toBe(Code.ResourceExhausted);
    const quota = await b.client(UserService).getQuota({ userId: id });
    expect(quota.translations?.used).toBe(30n);
    expect(quota.storageBytes?.used).toBe(4800n);
  });
});
