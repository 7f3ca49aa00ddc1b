import { AuditResult, createPersistenceClient, Durability, PersistenceError } from "../../../clients/src/index";
import { PROTOCOLS, startTestServer, type TestServer } from "../../support/test-server";

describe("client SDK: the audit client", () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startTestServer({ PERSISTENCE_AUDIT_RETENTION_INTERVAL_MS: "0" });
  });
  afterAll(async () => {
    await server?.close();
  });

  it.each(PROTOCOLS)("writes, searches, exports and verifies audit logs over %s", async (protocol) => {
    const client = createPersistenceClient({ baseUrl: server.url, protocol });
    try {
      const actor = `sdk-${protocol}-${Date.now().toString(36)}`;
      const { ids } = await client.audit.writeLogs({
        entries: [
          { action: "file.delete", result: AuditResult.SUCCESS, actor: { type: "user", id: actor }, message: "删除了文件 report.xlsx" },
          { action: "file.upload", result: AuditResult.SUCCESS, actor: { type: "user", id: actor }, message: "上传了文件" },
        ],
        durability: Durability.COMMITTED,
      });
      const found = await client.audit.searchLogs({ actorId: actor, q: "删除" });
      expect(found.items.map((e) => e.id)).toEqual([ids[0]]);
      const exported: string[] = [];
      for await (const batch of client.audit.exportLogs({ actorId: actor })) exported.push(...batch.entries.map((e) => e.id));
      expect(exported).toEqual(ids);
      expect(Number((await client.audit.getAuditStats({ actorId: actor })).total)).toBe(2);
      expect((await client.audit.verifyAuditChain({})).ok).toBe(true);
      const err = await client.audit.writeLogs({ entries: [{ result: AuditResult.SUCCESS }] }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(PersistenceError);
      expect((err as PersistenceError).fieldViolations.map((v) => v.field)).toEqual(["entries[0].action"]);
    } finally {
      client.close();
    }
  });
});
