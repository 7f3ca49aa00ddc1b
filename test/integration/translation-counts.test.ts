import { sql, type Kysely } from "kysely";
import { Durability } from "../../gen/persistence/v1/common_pb";
import { TaskStatus, TranslationService } from "../../gen/persistence/v1/translation_pb";
import { openSqlBackend } from "../../server/backends/sql/sql-backend";
import { createPatchWriter } from "../../server/backends/sql/patch-writer";
import type { SqlBackend } from "../../server/backends/sql/sql-store";
import { createPatch, type Patch } from "../../server/core/patch";
import { openServiceSql, SCHEMA } from "../../server/schema";
import { countsHooks, readCounts } from "../../server/translation/translation.counts";
import { purgeSession } from "../../server/translation/translation.repository";
import { TRANSLATION_PATCH_TABLES, type TranslationTables } from "../../server/translation/translation.table";
import { createTombstoneGuard } from "../../server/translation/translation.tombstones";
import { createSqlTarget, describeEachDialect } from "../support/sql-targets";
import { startTestServer, type TestServer } from "../support/test-server";

const COUNTS_MIGRATION = "2026_12_02_000000_session_counts";

let unique = 0;
const newSession = () => `c-${process.pid}-${Date.now().toString(36)}-${++unique}`;

/** The stored tasks of each session by status, counted from the tasks themselves. */
async function countedFromTasks(db: Kysely<unknown>, sessionIds: readonly string[]): Promise<Map<string, Record<string, number>>> {
  const { rows } = await sql<{ session_id: string; status: string; n: number | string }>`
    select session_id, status, count(*) as n from translation_tasks where session_id in (${sql.join(sessionIds)}) group by session_id, status`.execute(db);
  const out = new Map<string, Record<string, number>>();
  for (const row of rows) out.set(row.session_id, { ...out.get(row.session_id), [row.status]: Number(row.n) });
  return out;
}

async function expectExact(backend: SqlBackend, sessionIds: readonly string[]): Promise<void> {
  const db = backend.db.withTables<TranslationTables>();
  expect(await readCounts(db, sessionIds)).toEqual(await countedFromTasks(backend.db, sessionIds));
}

const taskPatch = (sessionId: string, n: number, stamp: number, status: string): Patch =>
  createPatch("translation_tasks", [sessionId, `T${String(n).padStart(5, "0")}`], stamp, [
    ["status", status],
    ["row_index", n],
    ["created_at", stamp],
  ]);

describeEachDialect("translation-counts", (target, dialect) => {
  let server: TestServer;
  let store: SqlBackend;
  const client = () => server.client(TranslationService);

  beforeAll(async () => {
    server = await startTestServer({ PERSISTENCE_SQL_URL: target().url, PERSISTENCE_FLUSH_INTERVAL_MS: "60000" });
    store = await openServiceSql(target().url);
  });
  afterAll(async () => {
    await server?.close();
    await store?.close();
  });

  const tasks = (sessionId: string, from: number, to: number, status: TaskStatus, stampMs?: number) =>
    Array.from({ length: to - from }, (_, i) => ({
      sessionId,
      taskId: `T${String(from + i).padStart(5, "0")}`,
      sheetName: "S",
      rowIndex: from + i,
      columnName: "C",
      status,
      ...(stampMs === undefined ? {} : { updatedAt: { seconds: BigInt(Math.floor(stampMs / 1000)), nanos: 0 } }),
    }));
  const stored = async (sessionId: string) => (await client().getSession({ sessionId })).session?.storedTasks;

  it("keeps a session's counters equal to its stored tasks through inserts and status changes", async () => {
    const s = newSession();
    await client().batchUpsertSessions({ sessions: [{ sessionId: s, filename: "a.xlsx" }], durability: Durability.COMMITTED });
    await client().batchUpsertTasks({ tasks: tasks(s, 0, 30, TaskStatus.PENDING), durability: Durability.COMMITTED });
    expect(await stored(s)).toMatchObject({ total: 30n, pending: 30n, completed: 0n });
    // Some move on, twice; new ones arrive with them.
    await client().batchUpsertTasks({ tasks: [...tasks(s, 0, 10, TaskStatus.PROCESSING), ...tasks(s, 30, 35, TaskStatus.FAILED)], durability: Durability.COMMITTED });
    await client().batchUpsertTasks({ tasks: [...tasks(s, 0, 4, TaskStatus.COMPLETED), ...tasks(s, 30, 31, TaskStatus.CANCELLED)], durability: Durability.COMMITTED });
    expect(await stored(s)).toMatchObject({ total: 35n, pending: 20n, processing: 6n, completed: 4n, failed: 4n, cancelled: 1n });
    // A stale status (stamped before the stored one) changes nothing, the counters included.
    await client().batchUpsertTasks({ tasks: tasks(s, 0, 4, TaskStatus.PENDING, Date.now() - 3_600_000), durability: Durability.COMMITTED });
    expect((await stored(s))?.completed).toBe(4n);
    await expectExact(store, [s]);
  });

  it("removes the counters with a hard delete and with the cleanup of a soft-deleted session", async () => {
    const hard = newSession();
    const soft = newSession();
    await client().batchUpsertSessions({ sessions: [hard, soft].map((sessionId) => ({ sessionId, filename: "d.xlsx" })), durability: Durability.COMMITTED });
    await client().batchUpsertTasks({ tasks: [...tasks(hard, 0, 12, TaskStatus.COMPLETED), ...tasks(soft, 0, 7, TaskStatus.PENDING)], durability: Durability.COMMITTED });
    await expectExact(store, [hard, soft]);
    expect(await client().deleteSession({ sessionId: hard })).toMatchObject({ deletedTasks: 12 });
    await client().deleteSession({ sessionId: soft, soft: true });
    const rows = async () => (await sql<{ session_id: string }>`select session_id from translation_session_counts where session_id in (${hard}, ${soft})`.execute(store.db)).rows;
    expect((await rows()).map((r) => r.session_id)).toEqual([soft]);
    await client().cleanupSessions({});
    expect(await rows()).toEqual([]);
  });

  it("deletes a large session in slices, each subtracting what it removed", async () => {
    const s = newSession();
    const writer = await createPatchWriter(store, TRANSLATION_PATCH_TABLES, countsHooks(dialect, createTombstoneGuard(dialect)));
    const stamp = Date.now() * 1000;
    await writer.write([{ table: "translation_tasks", patches: Array.from({ length: 25 }, (_, i) => taskPatch(s, i, stamp, i % 3 ? "pending" : "failed")) }]);
    await expectExact(store, [s]);
    // Slices of 10: the counters go down 10 at a time, and the row goes with the last task.
    expect(await purgeSession(store.db.withTables<TranslationTables>(), dialect, s, 10)).toBe(25);
    expect((await sql`select * from translation_session_counts where session_id = ${s}`.execute(store.db)).rows).toEqual([]);
  });

  it("fills the counters from the tasks a database held before the migration", async () => {
    const earlier = createSqlTarget(dialect, "counts-before");
    const before = Object.fromEntries(Object.entries(SCHEMA).filter(([name]) => name !== COUNTS_MIGRATION));
    try {
      const old = await openSqlBackend(earlier.url, { migrations: before });
      const a = newSession();
      const b = newSession();
      try {
        // Written as the service wrote them then: tasks only, no counters.
        const writer = await createPatchWriter(old, TRANSLATION_PATCH_TABLES);
        const stamp = Date.now() * 1000;
        const statuses = ["pending", "processing", "completed", "failed", "cancelled"];
        await writer.write([
          { table: "translation_tasks", patches: [...Array.from({ length: 40 }, (_, i) => taskPatch(a, i, stamp, statuses[i % 5]!)), taskPatch(b, 0, stamp, "completed")] },
        ]);
      } finally {
        await old.close();
      }
      const migrated = await openServiceSql(earlier.url);
      try {
        await expectExact(migrated, [a, b]);
        expect((await readCounts(migrated.db.withTables<TranslationTables>(), [a])).get(a)).toEqual({ pending: 8, processing: 8, completed: 8, failed: 8, cancelled: 8 });
      } finally {
        await migrated.close();
      }
    } finally {
      await earlier.drop();
    }
  });

  if (dialect !== "mysql") return;

  describe("two instances flushing the same session at once", () => {
    let other: SqlBackend;
    beforeAll(async () => {
      other = await openServiceSql(target().url);
    });
    afterAll(async () => {
      await other?.close();
    });

    const hooked = (backend: SqlBackend, finish?: () => Promise<void>, beforeLock?: () => void) => {
      const hooks = countsHooks(dialect, async (_trx, groups) => {
        beforeLock?.();
        return groups;
      });
      return createPatchWriter(backend, TRANSLATION_PATCH_TABLES, {
        prepare: hooks.prepare,
        finish: async (trx, written) => {
          await finish?.();
          await hooks.finish(trx, written);
        },
      });
    };

    it("counts both writers' tasks when one flushes while the other holds its transaction open", async () => {
      const s = newSession();
      let release!: () => void;
      const gate = new Promise<void>((resolve) => (release = resolve));
      let reachedFinish!: () => void;
      const inFinish = new Promise<void>((resolve) => (reachedFinish = resolve));
      const first = await hooked(store, async () => {
        reachedFinish();
        await gate;
      });
      // The second, once inside its transaction, lets the first go on: its counter lock then waits for the first to commit.
      const second = await hooked(other, undefined, () => release());
      const stamp = Date.now() * 1000;
      // The first has written its tasks and waits, uncommitted, before its recount.
      const one = first.write([{ table: "translation_tasks", patches: Array.from({ length: 50 }, (_, i) => taskPatch(s, i, stamp, "pending")) }]);
      await inFinish;
      const two = second.write([{ table: "translation_tasks", patches: Array.from({ length: 30 }, (_, i) => taskPatch(s, 100 + i, stamp, "completed")) }]);
      await Promise.all([one, two]);
      await expectExact(store, [s]);
      expect((await readCounts(store.db.withTables<TranslationTables>(), [s])).get(s)).toEqual({ pending: 50, completed: 30 });
    });

    it("stays exact through many concurrent flushes of overlapping tasks and sessions, and a backlog written in parallel parts", async () => {
      const sessions = [newSession(), newSession(), newSession()];
      const writers = [await hooked(store), await hooked(other)];
      const statuses = ["pending", "processing", "completed", "failed"];
      let stamp = Date.now() * 1000;
      for (let round = 0; round < 15; round++) {
        await Promise.all(
          writers.map((writer, w) => {
            const patches = sessions.flatMap((s, k) =>
              Array.from({ length: 20 }, (_, i) => taskPatch(s, (round * 7 + i * (w + 1) + k) % 60, ++stamp, statuses[(round + i + w) % 4]!)),
            );
            // One key once per write, as the batcher merges them.
            const byKey = new Map(patches.map((p) => [p.key.join("/"), p]));
            return writer.write([{ table: "translation_tasks", patches: [...byKey.values()] }]);
          }),
        );
      }
      // 6,000 tasks over two sessions: split into parallel transactions that share a session.
      const backlog = sessions.slice(0, 2).flatMap((s) => Array.from({ length: 3000 }, (_, i) => taskPatch(s, 1000 + i, ++stamp, statuses[i % 4]!)));
      await Promise.all([writers[0]!.write([{ table: "translation_tasks", patches: backlog }]), writers[1]!.write([{ table: "translation_tasks", patches: backlog.slice(0, 500).map((p) => taskPatch(p.key[0]!, Number(p.key[1]!.slice(1)), ++stamp, "cancelled")) }])]);
      await expectExact(store, sessions);
    });
  });
});
