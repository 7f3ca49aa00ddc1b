import { Kysely, MysqlDialect, sql, type CompiledQuery } from "kysely";
import { createPool } from "mysql2";
import { Durability } from "../../gen/persistence/v1/common_pb";
import { SessionStatus, TaskStatus, TranslationService } from "../../gen/persistence/v1/translation_pb";
import * as repo from "../../server/translation/translation.repository";
import type { TranslationTables } from "../../server/translation/translation.table";
import { createSqlTarget, MYSQL_SERVER, type SqlTarget } from "../support/sql-targets";
import { startTestServer } from "../support/test-server";

/** Every SELECT a call runs, captured from Kysely's query log. */
function capturing(database: string) {
  const queries: CompiledQuery[] = [];
  const db = new Kysely<TranslationTables>({
    dialect: new MysqlDialect({
      pool: createPool({ host: MYSQL_SERVER.hostname, port: Number(MYSQL_SERVER.port || 3306), user: MYSQL_SERVER.username || "root", database }),
    }),
    log: (event) => {
      if (event.level === "query" && /^select/i.test(event.query.sql)) queries.push(event.query);
    },
  });
  return { db, queries };
}

describe("query plans on MariaDB", () => {
  let target: SqlTarget;
  beforeAll(async () => {
    target = createSqlTarget("mysql", "plans");
    const server = await startTestServer({ PERSISTENCE_SQL_URL: target.url });
    const client = server.client(TranslationService);
    const statuses = [TaskStatus.PENDING, TaskStatus.PROCESSING, TaskStatus.COMPLETED, TaskStatus.FAILED];
    for (let s = 0; s < 40; s++) {
      const sessionId = `plan-${s}`;
      await client.batchUpsertSessions({
        sessions: [{ sessionId, filename: "p.xlsx", status: s % 5 || SessionStatus.PENDING, llmProvider: `p${s % 4}` }],
      });
      await client.batchUpsertTasks({
        tasks: Array.from({ length: 250 }, (_, i) => ({
          sessionId,
          taskId: `TASK_${i}`,
          batchId: `B_${s}_${i % 5}`,
          sheetName: `Sheet${i % 3}`,
          rowIndex: i,
          columnName: "Text",
          sourceText: "x",
          status: statuses[i % 4],
        })),
        durability: Durability.ACCEPTED,
      });
    }
    // Enough sessions that the optimizer's choices mean what they would on a real store, mostly finished as there.
    for (let batch = 0; batch < 3; batch++) {
      await client.batchUpsertSessions({
        sessions: Array.from({ length: 1000 }, (_, i) => ({
          sessionId: `many-${batch}-${i}`,
          filename: "m.xlsx",
          status: [SessionStatus.PENDING, SessionStatus.PROCESSING, SessionStatus.FAILED, SessionStatus.CANCELLED][i % 40] ?? SessionStatus.COMPLETED,
          llmProvider: `p${i % 20}`,
          createdAt: { seconds: BigInt(1_700_000_000 + batch * 100_000 + i * 60), nanos: 0 },
        })),
        durability: Durability.ACCEPTED,
      });
    }
    await client.flush({});
    await server.close();
  });
  afterAll(async () => {
    await target?.drop();
  });

  it("uses an index for every listing and filter", async () => {
    const { db, queries } = capturing(target.database!);
    try {
      await sql`analyze table translation_sessions, translation_tasks`.execute(db);
      const page = { page: 1, pageSize: 20 };
      const after = { page: 2, pageSize: 20, cursor: { page: 2, after: [1, "plan-3"] } };
      const created = { column: "created_at", desc: true } as const;
      const updated = { column: "updated_at", desc: false } as const;
      const now = Date.now() * 1000;
      await repo.findSession(db, "plan-1");
      await repo.taskCounts(db, ["plan-1", "plan-2"]);
      for (const f of [{ statuses: [] }, { statuses: ["processing"] }, { statuses: [], llmProvider: "p1" }, { statuses: [], fromMicros: now - 1e9, toMicros: now }]) {
        await repo.countSessions(db, f);
        await repo.pageOfSessions(db, f, created, page);
        await repo.pageOfSessions(db, f, updated, after);
      }
      for (const f of [
        { sessionId: "plan-1", statuses: [] },
        { sessionId: "plan-1", statuses: ["pending"] },
        { sessionId: "plan-1", statuses: [], sheetName: "Sheet1" },
        { statuses: [], batchId: "B_1_1" },
        { statuses: ["failed"] },
        { statuses: [], fromMicros: now - 1e9, toMicros: now - 1e8 },
      ]) {
        await repo.countTasks(db, f);
        await repo.pageOfTasks(db, f, page);
        await repo.pageOfTasks(db, f, { page: 2, pageSize: 20, cursor: { page: 2, after: f.sessionId ? ["Sheet0", 3, "Text", "TASK_3"] : ["plan-1", "Sheet0", 3, "Text", "TASK_3"] } });
      }
      await repo.findTasks(db, "TASK_7", undefined, 11);
      await repo.findTasks(db, "TASK_7", "plan-2", 11);
      await repo.findTasksByIds(db, "plan-2", ["TASK_1", "TASK_2"]);
      await repo.incompleteSessions(db);
      await repo.unfinishedTasks(db, "plan-2", 100);
      await repo.unfinishedTasks(db, "plan-2", 100, ["Sheet1", 10, "Text", "TASK_10"]);
      await repo.expiredSessionIds(db, { status: "completed", updatedBefore: now }, 200);
      await repo.expiredSessionIds(db, { softDeleted: true }, 200);
      await repo.countExpired(db, { status: "failed", updatedBefore: now });

      expect(queries.length).toBeGreaterThan(40);
      const fullScans: string[] = [];
      for (const query of queries) {
        const rows = (await db.executeQuery<{ table: string | null; type: string | null; key: string | null }>({ ...query, sql: `explain ${query.sql}` } as CompiledQuery)).rows;
        for (const row of rows) if (row.type === "ALL") fullScans.push(`${row.table}: ${query.sql}`);
      }
      expect(fullScans).toEqual([]);
    } finally {
      await db.destroy();
    }
  });
});
