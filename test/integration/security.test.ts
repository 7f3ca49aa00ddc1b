import { createHash } from "node:crypto";
import { Code, ConnectError } from "@connectrpc/connect";
import { Health } from "../../gen/grpc/health/v1/health_pb";
import { ServerReflection } from "../../gen/grpc/reflection/v1/reflection_pb";
import { toJsonString } from "@bufbuild/protobuf";
import { GetMetricsResponseSchema, SystemService } from "../../gen/persistence/v1/system_pb";
import { TranslationService } from "../../gen/persistence/v1/translation_pb";
import { readAccessTable } from "../../server/security/access";
import { createAuthenticator } from "../../server/security/auth";
import { grants } from "../../server/security/scopes";
import { servedAccess } from "../../server/rpc/routes";
import { MODULES } from "../../server/modules";
import { errorOf } from "../support/errors";
import { secret } from "../support/secrets";
import { PROTOCOLS, startTestServer, type TestServer } from "../support/test-server";

const KEYS = {
  reader: secret("reader-key-0123456789abcdef"),
  writer: secret("writer-key-0123456789abcdef"),
  admin: secret("admin-key-0123456789abcdefgh"),
  ops: secret("ops-key-0123456789abcdefghij"),
};
const API_KEYS = JSON.stringify([
  { name: "reader", key: KEYS.reader, scopes: ["translation:read"] },
  { name: "writer", key: KEYS.writer, scopes: ["translation:write"] },
  // Given as its hash: the service never needs the key itself.
  { name: "admin", key_sha256: createHash("sha256").update(KEYS.admin).digest("hex"), scopes: ["admin"] },
  { name: "ops", key: KEYS.ops, scopes: ["system:read"] },
]);

async function drain(stream: AsyncIterable<unknown>): Promise<void> {
  for await (const _ of stream);
}

const bearer = (key: string) => ({ headers: { authorization: `Bearer ${key}` } });

describe("scope declarations", () => {
  it("come from the contract for every RPC the router really serves, and every one of them refuses a caller without a key", async () => {
    const server = await startTestServer({ PERSISTENCE_API_KEYS: API_KEYS });
    try {
      const access = servedAccess(MODULES.flatMap((m) => m.services.map((s) => s.desc)));
      const authenticator = createAuthenticator({ apiKeys: server.app.config.apiKeys, openEndpoints: [], access });
      expect(server.app.rpcs.length).toBeGreaterThan(20);
      for (const rpc of server.app.rpcs) {
        expect([rpc, access.get(rpc)?.scope]).toEqual([rpc, expect.any(String)]);
        const refusal = authenticator.checkRpc(rpc, () => undefined);
        expect([rpc, refusal instanceof ConnectError ? refusal.code : refusal]).toEqual([rpc, Code.Unauthenticated]);
      }
    } finally {
      await server.close();
    }
  });

  it("stop the start-up when a served RPC declares no access, naming it", () => {
    expect(() => readAccessTable([TranslationService, Health])).toThrow("grpc.health.v1.Health.Check declares no (persistence.v1.access) option");
  });

  it("reach the OpenAPI document: both key schemes, and each operation's security and scope", async () => {
    const server = await startTestServer({ PERSISTENCE_API_KEYS: API_KEYS, PERSISTENCE_OPEN_ENDPOINTS: "health" });
    try {
      const doc = (await (await fetch(`${server.url}/openapi.json`, bearer(KEYS.admin))).json()) as {
        components: { securitySchemes: Record<string, { type: string; name?: string; scheme?: string }> };
        paths: Record<string, Record<string, { security: object[]; description: string }>>;
      };
      expect(doc.components.securitySchemes).toMatchObject({ bearer: { type: "http", scheme: "bearer" }, apiKey: { type: "apiKey", name: "x-api-key" } });
      const upsert = doc.paths["/api/v1/translation/tasks/batch"]!.post!;
      expect(upsert.security).toEqual([{ bearer: [] }, { apiKey: [] }]);
      expect(upsert.description).toContain("`translation:write`");
      expect(doc.paths["/health"]!.get!.security).toEqual([{ bearer: [] }, { apiKey: [] }, {}]);
    } finally {
      await server.close();
    }
  });

  it("nest: admin grants all, an area's admin grants its write and read, nothing crosses areas", () => {
    expect(grants(["admin"], "translation:admin")).toBe(true);
    expect(grants(["translation:admin"], "translation:read")).toBe(true);
    expect(grants(["translation:write"], "translation:read")).toBe(true);
    expect(grants(["translation:read"], "translation:write")).toBe(false);
    expect(grants(["translation:admin"], "system:read")).toBe(false);
    expect(grants(["translation:admin"], "admin")).toBe(false);
  });
});

describe("API keys and scopes", () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startTestServer({ PERSISTENCE_API_KEYS: API_KEYS });
  });
  afterAll(async () => {
    await server?.close();
  });

  const tasks = { tasks: [{ sessionId: "sec", taskId: "T1", status: 1 }] };

  it.each(PROTOCOLS)("answers UNAUTHENTICATED without a key, or with an unknown one, over %s", async (protocol) => {
    const client = server.client(TranslationService, protocol);
    expect((await errorOf(client.getStats({}))).code).toBe(Code.Unauthenticated);
    expect((await errorOf(client.getStats({}, bearer("not-a-configured-key")))).code).toBe(Code.Unauthenticated);
    expect((await errorOf(server.client(SystemService, protocol).getInfo({}))).code).toBe(Code.Unauthenticated);
  });

  it.each(PROTOCOLS)("gives a translation:read key PERMISSION_DENIED on BatchUpsertTasks and DeleteSession over %s", async (protocol) => {
    const client = server.client(TranslationService, protocol);
    expect((await client.getStats({}, bearer(KEYS.reader))).totalSessions).toBe(0n);
    const write = await errorOf(client.batchUpsertTasks(tasks, bearer(KEYS.reader)));
    expect(write.code).toBe(Code.PermissionDenied);
    expect(write.rawMessage).toBe('API key "reader" lacks the scope translation:write');
    expect((await errorOf(client.deleteSession({ sessionId: "sec" }, bearer(KEYS.reader)))).code).toBe(Code.PermissionDenied);
  });

  it.each(PROTOCOLS)("lets a translation:write key write but not delete, and an admin key do both, over %s", async (protocol) => {
    const client = server.client(TranslationService, protocol);
    expect((await client.batchUpsertTasks(tasks, bearer(KEYS.writer))).count).toBe(1);
    expect((await errorOf(client.deleteSession({ sessionId: "sec" }, bearer(KEYS.writer)))).code).toBe(Code.PermissionDenied);
    // x-api-key works as well as a bearer token. (The session itself was never written: NOT_FOUND.)
    const outcome = await client.deleteSession({ sessionId: "sec" }, { headers: { "x-api-key": KEYS.admin } }).then(
      () => "deleted",
      (e: unknown) => Code[ConnectError.from(e).code],
    );
    expect(["deleted", "NotFound"]).toContain(outcome);
  });

  it("guards the REST paths the same way, before reading the body", async () => {
    const noKey = await fetch(`${server.url}/api/v1/translation/tasks/batch`, { method: "POST", headers: { "content-type": "application/json" }, body: "{" });
    expect(noKey.status).toBe(401);
    expect(noKey.headers.get("www-authenticate")).toBe('Bearer realm="persistence"');
    expect(((await noKey.json()) as { code: string }).code).toBe("unauthenticated");
    const reader = await fetch(`${server.url}/api/v1/translation/sessions/sec`, { method: "DELETE", headers: { authorization: `Bearer ${KEYS.reader}` } });
    expect(reader.status).toBe(403);
    expect(((await reader.json()) as { message: string }).message).toBe('API key "reader" lacks the scope translation:admin');
    const ok = await fetch(`${server.url}/api/v1/translation/stats`, { headers: { "x-api-key": KEYS.reader } });
    expect(ok.status).toBe(200);
  });

  it("keeps /health, /metrics, gRPC health and reflection behind a key unless configured open", async () => {
    expect((await fetch(`${server.url}/health`)).status).toBe(401);
    expect((await fetch(`${server.url}/livez`)).status).toBe(401);
    expect((await fetch(`${server.url}/readyz`)).status).toBe(401);
    expect((await fetch(`${server.url}/readyz`, { headers: { "x-api-key": KEYS.ops } })).status).toBe(200);
    expect((await fetch(`${server.url}/metrics`)).status).toBe(401);
    expect((await fetch(`${server.url}/metrics`, { headers: { "x-api-key": KEYS.reader } })).status).toBe(403);
    expect((await fetch(`${server.url}/metrics`, { headers: { "x-api-key": KEYS.ops } })).status).toBe(200);
    expect((await errorOf(server.client(Health, "grpc").check({}))).code).toBe(Code.Unauthenticated);
    expect((await server.client(Health, "grpc").check({}, bearer(KEYS.ops))).status).toBe(1);
    const listServices = async function* () {
      yield { messageRequest: { case: "listServices" as const, value: "" } };
    };
    const reflect = (options = {}) => drain(server.client(ServerReflection, "grpc").serverReflectionInfo(listServices(), options));
    expect((await errorOf(reflect())).code).toBe(Code.Unauthenticated);
    await reflect(bearer(KEYS.ops));
  });

  it("shows key names and scopes in GetConfig to an admin key, never a key or its hash", async () => {
    expect((await errorOf(server.client(SystemService).getConfig({}, bearer(KEYS.ops)))).code).toBe(Code.PermissionDenied);
    const { config } = await server.client(SystemService).getConfig({}, bearer(KEYS.admin));
    expect(config?.api_keys).toEqual([
      { name: "reader", scopes: ["translation:read"] },
      { name: "writer", scopes: ["translation:write"] },
      { name: "admin", scopes: ["admin"] },
      { name: "ops", scopes: ["system:read"] },
    ]);
    const text = JSON.stringify(config);
    for (const key of Object.values(KEYS)) {
      expect(text).not.toContain(key);
      expect(text).not.toContain(createHash("sha256").update(key).digest("hex"));
    }
  });

  it("keeps keys out of metrics labels", async () => {
    await server.client(TranslationService).getStats({}, bearer(KEYS.reader));
    await errorOf(server.client(TranslationService).getStats({}, bearer("an-unknown-key-0123456789")));
    const text = await (await fetch(`${server.url}/metrics`, { headers: { "x-api-key": KEYS.ops } })).text();
    expect(text).toContain('grpc_method="GetStats"');
    for (const key of [...Object.values(KEYS), "an-unknown-key-0123456789"]) expect(text).not.toContain(key);
    const summary = toJsonString(GetMetricsResponseSchema, await server.client(SystemService).getMetrics({}, bearer(KEYS.ops)));
    for (const key of Object.values(KEYS)) expect(summary).not.toContain(key);
  });

  it("names the key in the access log, and no log line holds a key", async () => {
    await server.client(TranslationService).getStats({}, { headers: { authorization: `Bearer ${KEYS.reader}`, "x-request-id": "who-called" } });
    expect(server.logs.find((l) => l.request_id === "who-called")).toMatchObject({ api_key: "reader", code: "ok" });
    const all = JSON.stringify(server.logs);
    for (const key of Object.values(KEYS)) expect(all).not.toContain(key);
  });
});

describe("open endpoints", () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startTestServer({ PERSISTENCE_API_KEYS: API_KEYS, PERSISTENCE_OPEN_ENDPOINTS: "health,metrics" });
  });
  afterAll(async () => {
    await server?.close();
  });

  it("serves /health, /livez, /readyz, gRPC health and /metrics without a key, and nothing else", async () => {
    expect((await fetch(`${server.url}/health`)).status).toBe(200);
    expect((await fetch(`${server.url}/livez`)).status).toBe(200);
    expect((await fetch(`${server.url}/readyz`)).status).toBe(200);
    expect((await fetch(`${server.url}/metrics`)).status).toBe(200);
    expect((await server.client(Health, "grpc").check({})).status).toBe(1);
    expect((await fetch(`${server.url}/api/v1/translation/stats`)).status).toBe(401);
    expect((await fetch(`${server.url}/`)).status).toBe(401);
  });
});
