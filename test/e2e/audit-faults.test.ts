import { mkdtempSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { sql } from "kysely";
import { AuditResult, AuditService } from "../../gen/persistence/v1/audit_pb";
import { Durability } from "../../gen/persistence/v1/common_pb";
import { openServiceSql } from "../../server/schema";
import { startServiceProcess } from "../support/service-process";
import { describeEachDialect } from "../support/sql-targets";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Writers appending audit entries with ids of their own until `until` resolves; returns the ids the service acknowledged. */
async function auditLoad(url: string, tag: string, durabilities: Durability[], until: Promise<unknown>): Promise<Set<string>> {
  const acked = new Set<string>();
  let done = false;
  void until.then(() => (done = true));
  const client = createClient(AuditService, createGrpcTransport({ baseUrl: url, idleConnectionTimeoutMs: 200 }));
  const writer = async (w: number) => {
    for (let round = 0; !done; round++) {
      const ids = Array.from({ length: 50 }, (_, i) => `${tag}-${w}-${round}-${i}`);
      const entries = ids.map((id) => ({
        id,
        action: "session.update",
        result: AuditResult.SUCCESS,
        actor: { type: "service", id: `writer-${w}` },
        message: `第 ${round} 轮写入 ${id}`,
      }));
      try {
        await client.writeLogs({ entries, durability: durabilities[w % durabilities.length]! });
      } catch {
        return; // the process is gone
      }
      for (const id of ids) acked.add(id);
    }
  };
  await Promise.all([0, 1, 2, 3].map(writer));
  return acked;
}

/** A COMMITTED write: it commits everything accepted before it, the replayed log included (retried while the service starts up). */
async function commitBehind(url: string, tag: string): Promise<void> {
  const client = createClient(AuditService, createGrpcTransport({ baseUrl: url, idleConnectionTimeoutMs: 200 }));
  const deadline = Date.now() + 60_000;
  for (;;) {
    try {
      await client.writeLogs({ entries: [{ id: `${tag}-after`, action: "test.after", result: AuditResult.SUCCESS }], durability: Durability.COMMITTED });
      return;
    } catch (err) {
      if (Date.now() > deadline) throw err;
      await sleep(500);
    }
  }
}

describeEachDialect("audit-faults", (target) => {
  async function killUnderAuditLoad(durabilities: Durability[], settings: Record<string, string>): Promise<void> {
    const dataDir = mkdtempSync(path.join(os.tmpdir(), "persistence-audit-kill-"));
    const env = { PERSISTENCE_SQL_URL: target().url, PERSISTENCE_DATA_DIR: dataDir, ...settings };
    const tag = `kill-${process.pid}-${Date.now().toString(36)}`;
    try {
      const first = await startServiceProcess(env);
      const killed = sleep(1500).then(() => first.stop("SIGKILL"));
      const acked = await auditLoad(first.url, tag, durabilities, killed);
      await killed;
      expect(acked.size).toBeGreaterThan(100);
      const second = await startServiceProcess(env);
      try {
        await commitBehind(second.url, tag);
        const store = await openServiceSql(target().url);
        try {
          const { rows } = await sql<{ id: string }>`select id from audit_logs where id like ${`${tag}-%`}`.execute(store.db);
          const stored = new Set(rows.map((r) => r.id));
          expect([...acked].filter((id) => !stored.has(id))).toEqual([]);
          // Each entry once: a replay of what had already committed adds nothing.
          expect(rows.length).toBe(stored.size);
        } finally {
          await store.close();
        }
        const client = createClient(AuditService, createGrpcTransport({ baseUrl: second.url, idleConnectionTimeoutMs: 200 }));
        const report = await client.verifyAuditChain({});
        expect(report.firstBroken).toBeUndefined();
        expect(report.ok).toBe(true);
      } finally {
        expect(await second.stop()).toBe(0);
      }
    } finally {
      rmSync(dataDir, { recursive: true, force: true });
    }
  }

  it("loses no audit entry acknowledged at LOGGED or COMMITTED when killed with SIGKILL under load, and the chain verifies after the restart", async () => {
    await killUnderAuditLoad([Durability.LOGGED, Durability.COMMITTED], { PERSISTENCE_FLUSH_INTERVAL_MS: "200" });
  }, 120_000);

  it("brings back from the write-ahead log every LOGGED entry no flush had reached, chained after the restart", async () => {
    await killUnderAuditLoad([Durability.LOGGED], {
      PERSISTENCE_FLUSH_INTERVAL_MS: "600000",
      PERSISTENCE_FLUSH_MAX_RECORDS: "1000000",
      PERSISTENCE_BUFFER_MAX_RECORDS: "1000000",
    });
  }, 120_000);
});
