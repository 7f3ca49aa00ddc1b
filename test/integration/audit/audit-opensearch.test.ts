import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import { AuditResult, AuditService } from "../../../gen/persistence/v1/audit_pb";
import { Durability } from "../../../gen/persistence/v1/common_pb";
import { startTestServer, type TestServer } from "../../support/test-server";

/**
 * The audit module with its `search` role on OpenSearch: the same SQL record and chain, projected into
 * daily `audit_logs-*` indices. Runs when TEST_OPENSEARCH_URL (or PERSISTENCE_OPENSEARCH_URL) names a
 * server; entries carry an actor id no other run uses, so a shared server's older indices do not matter.
 */
const OPENSEARCH_URL = process.env.TEST_OPENSEARCH_URL || process.env.PERSISTENCE_OPENSEARCH_URL;
const skip = OPENSEARCH_URL ? undefined : "PERSISTENCE_OPENSEARCH_URL (or TEST_OPENSEARCH_URL) is not set, and no OpenSearch server can run on this machine";
if (skip) process.stderr.write(`\n*** SKIPPED: the audit module on OpenSearch: ${skip} ***\n\n`);

(skip ? describe.skip : describe)("audit on OpenSearch", () => {
  let server: TestServer;
  const audit = () => server.client(AuditService);
  const actor = `os-${process.pid}-${Date.now().toString(36)}`;

  beforeAll(async () => {
    server = await startTestServer({ PERSISTENCE_OPENSEARCH_URL: OPENSEARCH_URL!, PERSISTENCE_AUDIT_RETENTION_INTERVAL_MS: "0" });
  });
  afterAll(async () => {
    await server?.close();
  });

  it("projects committed entries into the index: free text (Chinese too), filters, paging, stats, export and verify", async () => {
    const base = Date.parse("2026-06-01T08:00:00Z");
    const entry = (n: number, message: string, action = "session.delete", result = AuditResult.SUCCESS) => ({
      action,
      result,
      actor: { type: "user", id: actor },
      resource: { type: "session", id: `s-${n}` },
      ip: "10.0.0.9",
      message,
      // Two days: two daily indices.
      occurredAt: timestampFromMs(base + n * 12 * 3_600_000),
    });
    const { ids } = await audit().writeLogs({
      entries: [
        entry(0, "管理员删除了翻译会话 quests.xlsx"),
        entry(1, "用户上传了文件", "file.upload"),
        entry(2, "Session exported by the night job", "session.export", AuditResult.FAILURE),
        entry(3, "删除 again, in English too"),
      ],
      durability: Durability.COMMITTED,
    });
    expect(ids).toHaveLength(4);

    const find = async (q: string) => (await audit().searchLogs({ actorId: actor, q })).items.map((i) => i.id).sort();
    expect(await find("删除")).toEqual([ids[0], ids[3]].sort());
    expect(await find("上传")).toEqual([ids[1]]);
    expect(await find("exported")).toEqual([ids[2]]);
    expect(await find("登录")).toEqual([]);

    const all = await audit().searchLogs({ actorId: actor, pageSize: 3 });
    expect(Number(all.total)).toBe(4);
    // Newest first, across the two days' indices, then the rest by the cursor.
    expect(all.items.map((i) => i.id)).toEqual([ids[3], ids[2], ids[1]]);
    const rest = await audit().searchLogs({ actorId: actor, pageSize: 3, pageToken: all.nextPageToken });
    expect(rest.items.map((i) => i.id)).toEqual([ids[0]]);
    expect((await audit().searchLogs({ actorId: actor, action: "session." })).items).toHaveLength(3);
    expect((await audit().searchLogs({ actorId: actor, result: AuditResult.FAILURE })).items.map((i) => i.id)).toEqual([ids[2]]);

    const stats = await audit().getAuditStats({ actorId: actor });
    expect(Number(stats.total)).toBe(4);
    expect(Object.fromEntries(stats.byAction.map((c) => [c.value, Number(c.count)]))).toEqual({ "session.delete": 2, "file.upload": 1, "session.export": 1 });

    const exported: string[] = [];
    for await (const batch of audit().exportLogs({ actorId: actor, q: "删除" })) exported.push(...batch.entries.map((e) => e.id));
    expect(exported.sort()).toEqual([ids[0], ids[3]].sort());

    expect((await audit().verifyAuditChain({})).ok).toBe(true);
  });
});
