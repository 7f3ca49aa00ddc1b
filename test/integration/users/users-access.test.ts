import { randomBytes } from "node:crypto";
import { restCall } from "../../support/rest-call";
import { secret } from "../../support/secrets";
import { createSqlTarget, type SqlTarget } from "../../support/sql-targets";
import { startTestServer, type TestServer } from "../../support/test-server";
import { usersEnv } from "./users-env";

/** Who may do what with users, when API keys are configured. */
describe("users access", () => {
  const appKey = secret(`app-${randomBytes(12).toString("hex")}`);
  const readerKey = secret(`reader-${randomBytes(12).toString("hex")}`);
  const adminKey = secret(`admin-${randomBytes(12).toString("hex")}`);
  let target: SqlTarget;
  let server: TestServer;
  const as = (key: string) => ({ authorization: `Bearer ${key}` });

  beforeAll(async () => {
    target = createSqlTarget("sqlite", "users_access");
    server = await startTestServer({
      ...usersEnv("sqlite", target.url).vars,
      PERSISTENCE_API_KEYS: JSON.stringify([
        { name: "app", key: appKey, scopes: ["users:write"] },
        { name: "reader", key: readerKey, scopes: ["users:read"] },
        { name: "admin", key: adminKey, scopes: ["users:admin"] },
      ]),
    });
  });
  afterAll(async () => {
    await server?.close();
    await target?.drop();
  });

  it("lets users:write log in with a password but not vouch for a user_id; users:admin may", async () => {
    const tag = randomBytes(5).toString("hex");
    const password = secret(`pw-${randomBytes(9).toString("base64url")}`);
    const created = await restCall(server.url, "POST", "/api/v1/users", { username: `acc_${tag}`, email: `acc.${tag}@example.com`, password, display_name: "A" }, as(appKey));
    expect(created.status).toBe(200);
    const userId = created.json.user_id as string;
    const login = await restCall(server.url, "POST", "/api/v1/users/sessions", { username: `acc_${tag}`, password }, as(appKey));
    expect(login.status).toBe(200);
    secret(login.json.session_token as string);
    const vouched = await restCall(server.url, "POST", "/api/v1/users/sessions", { user_id: userId }, as(appKey));
    expect(vouched.status).toBe(403);
    expect(vouched.json.message).toContain("users:admin");
    const byAdmin = await restCall(server.url, "POST", "/api/v1/users/sessions", { user_id: userId }, as(adminKey));
    expect(byAdmin.status).toBe(200);
    secret(byAdmin.json.session_token as string);
  });

  it("keeps reads, writes, deletion and export to their scopes", async () => {
    const tag = randomBytes(5).toString("hex");
    const password = secret(`pw-${randomBytes(9).toString("base64url")}`);
    const body = { username: `acc2_${tag}`, email: `acc2.${tag}@example.com`, password, display_name: "B" };
    expect((await restCall(server.url, "POST", "/api/v1/users", body, as(readerKey))).status).toBe(403);
    const userId = (await restCall(server.url, "POST", "/api/v1/users", body, as(appKey))).json.user_id as string;
    expect((await restCall(server.url, "GET", `/api/v1/users/${userId}`, undefined, as(readerKey))).status).toBe(200);
    expect((await restCall(server.url, "GET", `/api/v1/users/${userId}`)).status).toBe(401);
    expect((await restCall(server.url, "GET", `/api/v1/users/${userId}/export`, undefined, as(appKey))).status).toBe(403);
    expect((await restCall(server.url, "DELETE", `/api/v1/users/${userId}`, undefined, as(appKey))).status).toBe(403);
    expect((await restCall(server.url, "GET", `/api/v1/users/${userId}/export`, undefined, as(adminKey))).status).toBe(200);
    expect((await restCall(server.url, "DELETE", `/api/v1/users/${userId}`, undefined, as(adminKey))).status).toBe(200);
  });
});
