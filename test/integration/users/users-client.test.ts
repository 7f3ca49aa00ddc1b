import { randomBytes } from "node:crypto";
import { Code } from "@connectrpc/connect";
import { createPersistenceClient, PersistenceError, QuotaKind, type PersistenceClient } from "../../../clients/src/index";
import { errorOf } from "../../support/errors";
import { secret } from "../../support/secrets";
import { createSqlTarget, type SqlTarget } from "../../support/sql-targets";
import { PROTOCOLS, startTestServer, type TestServer } from "../../support/test-server";
import { usersEnv } from "./users-env";

/** The client package's typed UserService client, over each protocol. */
describe("the client SDK's users client", () => {
  let target: SqlTarget;
  let server: TestServer;
  let env: ReturnType<typeof usersEnv>;

  beforeAll(async () => {
    target = createSqlTarget("sqlite", "users_client");
    env = usersEnv("sqlite", target.url);
    server = await startTestServer(env.vars);
  });
  afterAll(async () => {
    await server?.close();
    await target?.drop();
  });

  describe.each(PROTOCOLS)("over %s", (protocol) => {
    let client: PersistenceClient;
    beforeAll(() => {
      client = createPersistenceClient({ baseUrl: server.url, protocol });
    });
    afterAll(() => client.close());

    it("creates a user, logs in, validates and logs out, with typed errors", async () => {
      const tag = randomBytes(5).toString("hex");
      const password = secret(`pw-${randomBytes(9).toString("base64url")}`);
      const { user } = await client.users.createUser({ username: `sdk_${tag}`, email: `sdk.${tag}@example.com`, password, displayName: "SDK" });
      const login = await client.users.createSession({ email: `sdk.${tag}@example.com`, password, userAgent: `sdk ${protocol}` });
      secret(login.sessionToken);
      const valid = await client.users.validateSession({ sessionToken: login.sessionToken });
      expect(valid.user?.userId).toBe(user!.userId);
      expect(valid.session?.userAgent).toBe(`sdk ${protocol}`);
      const used = await client.users.consumeQuota({ userId: user!.userId, kind: QuotaKind.TRANSLATIONS, amount: 3n });
      expect(used.quota?.used).toBe(3n);
      await client.users.deleteSession({ sessionToken: login.sessionToken });
      const err = await errorOf(client.users.validateSession({ sessionToken: login.sessionToken }));
      expect(err).toBeInstanceOf(PersistenceError);
      expect(err.code).toBe(Code.NotFound);
      expect((await errorOf(client.users.createSession({ username: `sdk_${tag}`, password: "not-the-password" }))).code).toBe(Code.Unauthenticated);
    });
  });
});
