import { randomBytes } from "node:crypto";
import { Code } from "@connectrpc/connect";
import { Health, HealthCheckResponse_ServingStatus as Serving } from "../../../gen/grpc/health/v1/health_pb";
import { Durability } from "../../../gen/persistence/v1/common_pb";
import { TranslationService } from "../../../gen/persistence/v1/translation_pb";
import { UserService } from "../../../gen/persistence/v1/users_pb";
import { errorOf } from "../../support/errors";
import { healthUntil } from "../../support/health";
import { secret } from "../../support/secrets";
import { createSqlTarget, DIALECTS, type SqlTarget } from "../../support/sql-targets";
import { createTcpProxy, type TcpProxy } from "../../support/tcp-proxy";
import { startTestServer, type TestServer } from "../../support/test-server";
import { eventually } from "../../support/wait";
import { REDIS_URL, usersEnv } from "./users-env";

/** MariaDB (SQLite when TEST_DIALECTS leaves it out) with Redis behind a proxy that can make Redis look gone. */
describe("users with Redis down", () => {
  let proxy: TcpProxy;
  let server: TestServer;
  let sqlTarget: SqlTarget;
  let env: ReturnType<typeof usersEnv>;

  beforeAll(async () => {
    proxy = await createTcpProxy(Number(new URL(REDIS_URL).port || 6379));
    sqlTarget = createSqlTarget(DIALECTS.includes("mysql") ? "mysql" : "sqlite", "users_redis_down");
    // No in-process copies: every read goes to Redis, or to the database while Redis is gone.
    env = usersEnv("mysql", sqlTarget.url, { PERSISTENCE_HEALTH_INTERVAL_MS: "100", PERSISTENCE_USERS_CACHE_LOCAL_TTL_MS: "0" });
    server = await startTestServer({ ...env.vars, PERSISTENCE_REDIS_URL: `redis://127.0.0.1:${proxy.port}` });
  });
  afterAll(async () => {
    await server?.close();
    await proxy?.close();
    await env?.cleanup();
    await sqlTarget?.drop();
  });

  it("answers session validation UNAVAILABLE, never valid; translation keeps working; health names the service", async () => {
    const users = server.client(UserService);
    const tag = randomBytes(5).toString("hex");
    const password = secret(`pw-${randomBytes(9).toString("base64url")}`);
    const { user } = await users.createUser({ username: `down_${tag}`, email: `down.${tag}@example.com`, password, displayName: "Down" });
    const { sessionToken } = await users.createSession({ username: `down_${tag}`, password });
    secret(sessionToken);
    await expect(users.validateSession({ sessionToken })).resolves.toMatchObject({ valid: true });
    // Cached in Redis before the outage.
    for (let i = 0; i < 2; i++) await users.getUser({ userId: user!.userId });

    proxy.refuse(true);
    proxy.dropConnections();
    for (let i = 0; i < 3; i++) expect((await errorOf(users.validateSession({ sessionToken }))).code).toBe(Code.Unavailable);
    expect((await errorOf(users.createSession({ username: `down_${tag}`, password }))).code).toBe(Code.Unavailable);
    // Users are still created, changed and read, from the database.
    await users.updateUser({ userId: user!.userId, displayName: "Changed while Redis was down" });
    expect((await users.getUser({ userId: user!.userId })).user?.displayName).toBe("Changed while Redis was down");
    const { user: other } = await users.createUser({ username: `down2_${tag}`, email: `down2.${tag}@example.com`, password, displayName: "Other" });
    expect((await users.getUser({ userId: other!.userId })).user?.displayName).toBe("Other");
    await users.updateUser({ userId: other!.userId, displayName: "Renamed while Redis was down" });
    expect((await users.getUser({ userId: other!.userId })).user?.displayName).toBe("Renamed while Redis was down");

    const translation = server.client(TranslationService);
    const sessionId = `redis-down-${tag}`;
    await translation.batchUpsertSessions({ sessions: [{ sessionId, filename: "a.xlsx" }], durability: Durability.COMMITTED });
    expect((await translation.getSession({ sessionId })).session?.filename).toBe("a.xlsx");

    const reply = await healthUntil(server.url, (r) => r.body.backends.kv === "down");
    expect(reply.body.backends.sql).toBe("up");
    // Only the users service depends on Redis: the instance stays in its balancer.
    expect(reply.status).toBe(200);
    expect((await fetch(`${server.url}/readyz`)).status).toBe(200);
    const health = server.client(Health, "grpc");
    await eventually(async () => (await health.check({ service: "persistence.v1.UserService" })).status === Serving.NOT_SERVING);
    expect((await health.check({ service: "persistence.v1.TranslationService" })).status).toBe(Serving.SERVING);

    proxy.refuse(false);
    await eventually(async () => (await users.validateSession({ sessionToken }).catch(() => undefined))?.valid === true);
    await eventually(async () => (await health.check({ service: "persistence.v1.UserService" })).status === Serving.SERVING);
    // What Redis cached before the outage is not served once it is back: the change made meanwhile is.
    for (let i = 0; i < 3; i++) expect((await users.getUser({ userId: user!.userId })).user?.displayName).toBe("Changed while Redis was down");
  });
});
