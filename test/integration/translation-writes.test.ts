import { mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { sql } from "kysely";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError } from "@connectrpc/connect";
import { BadRequestSchema } from "../../gen/google/rpc/error_details_pb";
import { Durability } from "../../gen/persistence/v1/common_pb";
import { SystemService } from "../../gen/persistence/v1/system_pb";
import { SessionStatus, TaskStatus, TranslationService } from "../../gen/persistence/v1/translation_pb";
import type { SqlBackend } from "../../server/backends/sql/sql-store";
import { openServiceSql } from "../../server/schema";
import { retryDelayMs } from "../../server/core/errors";
import { errorOf } from "../support/errors";
import { healthUntil } from "../support/health";
import { secret } from "../support/secrets";
import { describeEachDialect, withMysql } from "../support/sql-targets";
import { startTestServer, type TestServer } from "../support/test-server";

type TaskInit = Record<string, unknown>;

let unique = 0;
/** A session id no other test uses. */
const newSession = () => `s-${process.pid}-${Date.now().toString(36)}-${++unique}`;

function newTask(sessionId: string, n: number, extra: TaskInit = {}) {
  return {
    sessionId,
    taskId: `TASK_${String(n).padStart(4, "0")}`,
    batchId: "BATCH_TR_NORMAL_001",
    sheetName: "Dialogue",
    rowIndex: n,
    columnName: "Text",
    sourceText: `Hello, adventurer #${n}!`,
    status: TaskStatus.PENDING,
    ...extra,
  };
}

/** A trigger `name` that makes the database refuse inserting one task (dropped by the test with `drop trigger`). */
async function poisonTask(store: SqlBackend, name: string, sessionId: string, taskId: string): Promise<void> {
  if (store.dialect === "mysql") {
    await sql.raw(`create trigger ${name} before insert on translation_tasks for each row
      if new.task_id = '${taskId}' and new.session_id = '${sessionId}' then signal sqlstate '45000' set message_text = 'poisoned row'; end if`).execute(store.db);
  } else {
    await sql.raw(`create trigger ${name} before insert on translation_tasks
      when new.task_id = '${taskId}' and new.session_id = '${sessionId}' begin select raise(abort, 'poisoned row'); end`).execute(store.db);
  }
}

describeEachDialect("translation-writes", (target) => {
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

  const taskRows = async (sessionId: string) =>
    (
      await sql<Record<string, unknown>>`select * from translation_tasks where session_id = ${sessionId} order by task_id`.execute(store.db)
    ).rows;
  const statements = () => server.app.status().statements;

  it("stores a batch at COMMITTED durability before it replies", async () => {
    const s = newSession();
    const reply = await client().batchUpsertTasks({
      tasks: [newTask(s, 1), newTask(s, 2)],
      durability: Durability.COMMITTED,
    });
    expect(reply).toMatchObject({ status: "accepted", count: 2, durability: Durability.COMMITTED });
    const rows = await taskRows(s);
    expect(rows).toHaveLength(2);
    expect(rows[0]).toMatchObject({
      task_id: "TASK_0001",
      batch_id: "BATCH_TR_NORMAL_001",
      sheet_name: "Dialogue",
      row_index: 1,
      column_name: "Text",
      source_text: "Hello, adventurer #1!",
      status: "pending",
      target_text: null,
      retry_count: 0,
    });
  });

  it("answers LOGGED by default (the log is on) and ACCEPTED when asked, and Flush commits them", async () => {
    const s = newSession();
    expect((await client().batchUpsertTasks({ tasks: [newTask(s, 1)] })).durability).toBe(Durability.LOGGED);
    // LOGGED means on disk when the reply leaves.
    const walDir = path.join(server.app.config.dataDir, "wal", "translation");
    const logged = readdirSync(walDir).map((f) => readFileSync(path.join(walDir, f)).toString());
    expect(logged.some((text) => text.includes(s))).toBe(true);
    expect((await client().batchUpsertTasks({ tasks: [newTask(s, 2)], durability: Durability.ACCEPTED })).durability).toBe(
      Durability.ACCEPTED,
    );
    expect(await taskRows(s)).toHaveLength(0);
    const flushed = await client().flush({});
    expect(flushed.status).toBe("flushed");
    expect(flushed.tasksWritten).toBeGreaterThanOrEqual(2);
    expect(await taskRows(s)).toHaveLength(2);
    expect((await client().flush({})).status).toBe("empty");
  });

  it("applies a patch: unset fields keep their value, clear_fields empties fields", async () => {
    const s = newSession();
    const t0 = Date.now() - 10_000;
    await client().batchUpsertTasks({ tasks: [newTask(s, 1, { updatedAt: timestampFromMs(t0), confidence: 0.5, llmModel: "m1" })] });
    await client().batchUpsertTasks({
      tasks: [{ sessionId: s, taskId: "TASK_0001", targetText: "こんにちは、冒険者！", status: TaskStatus.COMPLETED, updatedAt: timestampFromMs(t0 + 1000) }],
    });
    await client().flush({});
    expect((await taskRows(s))[0]).toMatchObject({
      source_text: "Hello, adventurer #1!",
      target_text: "こんにちは、冒険者！",
      status: "completed",
      confidence: 0.5,
      llm_model: "m1",
      updated_at: (t0 + 1000) * 1000,
    });

    await client().batchUpsertTasks({
      tasks: [{ sessionId: s, taskId: "TASK_0001", clearFields: ["target_text", "confidence", "sheet_name"], updatedAt: timestampFromMs(t0 + 2000) }],
      durability: Durability.COMMITTED,
    });
    expect((await taskRows(s))[0]).toMatchObject({
      source_text: "Hello, adventurer #1!",
      target_text: null,
      confidence: null,
      sheet_name: "",
      status: "completed",
      llm_model: "m1",
    });
  });

  it("never lets an older record overwrite newer state, in the buffer or in the database", async () => {
    const s = newSession();
    const t0 = Date.now() - 10_000;
    const at = (ms: number) => timestampFromMs(t0 + ms);
    await client().batchUpsertTasks({ tasks: [newTask(s, 1, { status: TaskStatus.COMPLETED, targetText: "new", updatedAt: at(2000) })], durability: Durability.COMMITTED });
    // Older, arriving later: the database keeps the newer values.
    await client().batchUpsertTasks({ tasks: [{ sessionId: s, taskId: "TASK_0001", status: TaskStatus.PROCESSING, targetText: "old", updatedAt: at(1000) }], durability: Durability.COMMITTED });
    expect((await taskRows(s))[0]).toMatchObject({ status: "completed", target_text: "new", updated_at: (t0 + 2000) * 1000 });

    // The same inside one flush window: the buffer merges by stamp, not by arrival.
    await client().batchUpsertTasks({ tasks: [newTask(s, 2, { status: TaskStatus.COMPLETED, targetText: "new", updatedAt: at(2000) })] });
    await client().batchUpsertTasks({ tasks: [{ sessionId: s, taskId: "TASK_0002", status: TaskStatus.PROCESSING, targetText: "old", errorMessage: "late", updatedAt: at(1000) }] });
    await client().flush({});
    // A field only the older record set still applies: each column keeps its newest value.
    expect((await taskRows(s))[1]).toMatchObject({ status: "completed", target_text: "new", error_message: "late", updated_at: (t0 + 2000) * 1000 });
  });

  it("makes two instances writing the same keys in opposite orders converge to the newest", async () => {
    const other = await startTestServer({ PERSISTENCE_SQL_URL: target().url, PERSISTENCE_FLUSH_INTERVAL_MS: "60000" });
    try {
      const s = newSession();
      const t0 = Date.now() - 100_000;
      const version = (n: number, v: number) =>
        newTask(s, n, { status: v === 3 ? TaskStatus.COMPLETED : TaskStatus.PROCESSING, targetText: `v${v}`, retryCount: v, updatedAt: timestampFromMs(t0 + v * 1000) });
      const keys = Array.from({ length: 50 }, (_, i) => i + 1);
      // Instance A sees versions 1, 2, 3; instance B sees 3, 2, 1. Each flushes in between.
      for (const v of [1, 2, 3]) {
        await client().batchUpsertTasks({ tasks: keys.map((n) => version(n, v)) });
        await other.client(TranslationService).batchUpsertTasks({ tasks: keys.map((n) => version(n, 4 - v)) });
        await (v % 2 ? client() : other.client(TranslationService)).flush({});
      }
      await client().flush({});
      await other.client(TranslationService).flush({});
      const rows = await taskRows(s);
      expect(rows).toHaveLength(50);
      for (const row of rows) expect(row).toMatchObject({ target_text: "v3", status: "completed", retry_count: 3, updated_at: (t0 + 3000) * 1000 });
    } finally {
      await other.close();
    }
  });

  it("coalesces many updates of one task into one row write", async () => {
    const s = newSession();
    const t0 = Date.now() - 10_000;
    for (let v = 0; v < 20; v++) {
      await client().batchUpsertTasks({ tasks: [newTask(s, 1, { retryCount: v, updatedAt: timestampFromMs(t0 + v) })] });
    }
    await client().flush({});
    const before = statements();
    await client().batchUpsertTasks({ tasks: [newTask(s, 2)] });
    for (let v = 0; v < 10; v++) await client().batchUpsertTasks({ tasks: [{ sessionId: s, taskId: "TASK_0002", retryCount: v }] });
    const flushed = await client().flush({});
    expect(flushed.tasksWritten).toBe(1);
    expect(statements() - before).toBe(1);
    expect((await taskRows(s)).map((r) => r.retry_count)).toEqual([19, 9]);
  });

  it("rejects an invalid batch whole, naming every field at fault, and keeps nothing of it", async () => {
    const s = newSession();
    const err = await errorOf(
      client().batchUpsertTasks({
        tasks: [
          newTask(s, 1),
          { ...newTask(s, 2), confidence: 1.5 },
          { ...newTask(s, 3), taskId: "bad id/../x" },
          { ...newTask(s, 4), status: 42 as TaskStatus },
          { ...newTask(s, 5), sheetName: "x".repeat(256), rowIndex: -1 },
          { ...newTask(s, 6), targetText: "字".repeat(21846), clearFields: ["nope", "source_text"] },
          { ...newTask(s, 7), updatedAt: { seconds: -5n, nanos: 0 } as never },
        ],
      }),
    );
    expect(err.code).toBe(Code.InvalidArgument);
    const fields = err.findDetails(BadRequestSchema)[0]?.fieldViolations.map((v) => v.field);
    expect(fields).toEqual([
      "tasks[1].confidence",
      "tasks[2].task_id",
      "tasks[3].status",
      "tasks[4].sheet_name",
      "tasks[4].row_index",
      "tasks[5].target_text",
      "tasks[5].clear_fields[0]",
      "tasks[5].clear_fields[1]",
      "tasks[6].updated_at",
    ]);
    expect(server.app.status().bufferRecords).toBe(0);
    await client().flush({});
    expect(await taskRows(s)).toHaveLength(0);

    expect((await errorOf(client().batchUpsertTasks({ tasks: [] }))).rawMessage).toContain("tasks: must hold 1 to 1000 records");
    const tooMany = Array.from({ length: 1001 }, (_, i) => newTask(s, i));
    expect((await errorOf(client().batchUpsertTasks({ tasks: tooMany }))).code).toBe(Code.InvalidArgument);
    expect((await errorOf(client().batchUpsertTasks({ tasks: [newTask(s, 1)], durability: 9 as Durability }))).rawMessage).toContain("durability");
  });

  it("requires a filename on a session's first write only", async () => {
    const s = newSession();
    const missing = await errorOf(client().batchUpsertSessions({ sessions: [{ sessionId: s, status: SessionStatus.PROCESSING }] }));
    expect(missing.code).toBe(Code.InvalidArgument);
    expect(missing.findDetails(BadRequestSchema)[0]?.fieldViolations[0]?.field).toBe("sessions[0].filename");

    await client().batchUpsertSessions({
      sessions: [{ sessionId: s, filename: "quests.xlsx", gameInfo: { game_name: "Saga", source_language: "en" }, totalTasks: 10 }],
      durability: Durability.COMMITTED,
    });
    await client().batchUpsertSessions({ sessions: [{ sessionId: s, status: SessionStatus.PROCESSING }], durability: Durability.COMMITTED });
    const { rows } = await sql<Record<string, unknown>>`select * from translation_sessions where session_id = ${s}`.execute(store.db);
    expect(rows[0]).toMatchObject({ filename: "quests.xlsx", status: "processing", total_tasks: 10 });
    expect(JSON.parse(String(rows[0]?.game_info))).toEqual({ game_name: "Saga", source_language: "en" });

    // Known from the database alone (another instance wrote it): the update needs no filename.
    const other = await startTestServer({ PERSISTENCE_SQL_URL: target().url });
    try {
      const reply = await other.client(TranslationService).batchUpsertSessions({ sessions: [{ sessionId: s, completedTasks: 3 }] });
      expect(reply.count).toBe(1);
    } finally {
      await other.close();
    }
  });

  it("flushes what it holds when it stops", async () => {
    const own = await startTestServer({ PERSISTENCE_SQL_URL: target().url, PERSISTENCE_FLUSH_INTERVAL_MS: "3600000" });
    const s = newSession();
    await own.client(TranslationService).batchUpsertTasks({ tasks: [newTask(s, 1), newTask(s, 2)], durability: Durability.ACCEPTED });
    expect(await taskRows(s)).toHaveLength(0);
    await own.close();
    expect(await taskRows(s)).toHaveLength(2);
  });

  it("accepts a task before its session", async () => {
    const s = newSession();
    await client().batchUpsertTasks({ tasks: [newTask(s, 1)], durability: Durability.COMMITTED });
    expect(await taskRows(s)).toHaveLength(1);
  });

  it("reports the write path in GetRecoveryStatus, GetHealth and /metrics", async () => {
    const s = newSession();
    await client().batchUpsertTasks({ tasks: [newTask(s, 1), newTask(s, 2)] });
    const status = await client().getRecoveryStatus({});
    expect(Number(status.bufferRecords)).toBeGreaterThanOrEqual(2);
    expect(Number(status.walPendingRecords)).toBeGreaterThanOrEqual(2);
    expect(status.databaseReachable).toBe(true);
    const health = (await (await fetch(`${server.url}/health`)).json()) as { buffer: { records: string } };
    expect(Number(health.buffer.records)).toBeGreaterThanOrEqual(2);
    await client().flush({});
    const after = await client().getRecoveryStatus({});
    expect(Number(after.bufferRecords)).toBe(0);
    expect(Number(after.walPendingRecords)).toBe(0);
    expect(after.lastFlushAt).toBeDefined();
    const summary = await server.client(SystemService).getMetrics({});
    expect(Number(summary.writePath?.flushes)).toBeGreaterThan(0);
    expect(Number(summary.writePath?.recordsWritten)).toBeGreaterThanOrEqual(2);
    expect(Number(summary.writePath?.statements)).toBeGreaterThan(0);
    // Every module's write path is listed, in the order they were opened.
    expect(summary.writePaths.map((w) => w.name)).toEqual(expect.arrayContaining(["translation", "audit"]));
    expect(summary.writePaths[0]?.name).toBe("translation");
    expect(summary.writePath?.name).toBe("translation");
    expect(Number(summary.buffer?.records)).toBe(0);
    const metrics = await (await fetch(`${server.url}/metrics`)).text();
    expect(metrics).toMatch(/persistence_flushed_records_total\{write_path="translation",table="translation_tasks"\} [1-9]/);
    expect(metrics).toContain('persistence_data_loss_total{write_path="translation"} 0');
    expect(metrics).toContain("persistence_rows_per_statement_bucket");
  });
});

describeEachDialect("translation-writes under pressure", (target) => {
  it("writes a flush larger than one statement may hold in chunks: 5,000 tasks with long texts", async () => {
    const big = await startTestServer({
      PERSISTENCE_SQL_URL: target().url,
      PERSISTENCE_FLUSH_INTERVAL_MS: "3600000",
      PERSISTENCE_FLUSH_MAX_RECORDS: "100000",
    });
    const store = await openServiceSql(target().url);
    const client = () => big.client(TranslationService);
    const statements = () => big.app.status().statements;
    const s = newSession();
    try {
    const long = (n: number, what: string) => `${what} ${n} `.padEnd(2000, "翻訳テキスト");
    const before = statements();
    for (let start = 0; start < 5000; start += 500) {
      await client().batchUpsertTasks({
        tasks: Array.from({ length: 500 }, (_, i) =>
          newTask(s, start + i, { sourceText: long(start + i, "source"), context: long(start + i, "context"), errorMessage: "x".repeat(500) }),
        ),
        durability: Durability.ACCEPTED,
      });
    }
    const flushed = await client().flush({});
    expect(flushed.tasksWritten).toBe(5000);
    const written = statements() - before;
    expect(written).toBeGreaterThan(1);
    expect(written).toBeLessThan(20);
    const { rows } = await sql<{ n: number }>`select count(*) as n from translation_tasks where session_id = ${s}`.execute(store.db);
    expect(Number(rows[0]?.n)).toBe(5000);
    const sample = (await sql<{ source_text: string }>`select source_text from translation_tasks where session_id = ${s} and task_id = 'TASK_4321'`.execute(store.db)).rows[0];
    expect(sample?.source_text).toBe(long(4321, "source"));
    } finally {
      await big.close();
      await store.close();
    }
  });

  it("refuses writes with RESOURCE_EXHAUSTED and a retry delay once the buffer is full, and takes them again after a flush", async () => {
    const server = await startTestServer({
      PERSISTENCE_SQL_URL: target().url,
      PERSISTENCE_FLUSH_INTERVAL_MS: "3600000",
      PERSISTENCE_FLUSH_MAX_RECORDS: "100000",
      PERSISTENCE_BUFFER_MAX_RECORDS: "50",
    });
    try {
      const client = server.client(TranslationService);
      const s = newSession();
      await client.batchUpsertTasks({ tasks: Array.from({ length: 40 }, (_, i) => newTask(s, i)) });
      const full = await errorOf(client.batchUpsertTasks({ tasks: Array.from({ length: 20 }, (_, i) => newTask(s, 100 + i)) }));
      expect(full.code).toBe(Code.ResourceExhausted);
      expect(retryDelayMs(full)).toBeGreaterThan(0);
      expect(server.app.status().bufferRecords).toBe(40);
      await client.flush({});
      expect((await client.batchUpsertTasks({ tasks: Array.from({ length: 20 }, (_, i) => newTask(s, 100 + i)) })).count).toBe(20);
    } finally {
      await server.close();
    }
  });

  it("reports the rows a Flush moved to the dead letters apart from the rows it wrote", async () => {
    const store = await openServiceSql(target().url);
    const server = await startTestServer({ PERSISTENCE_SQL_URL: target().url, PERSISTENCE_FLUSH_INTERVAL_MS: "60000" });
    const s = newSession();
    try {
      await poisonTask(store, "poison_flush", s, "TASK_0003");
      const client = server.client(TranslationService);
      await client.batchUpsertTasks({ tasks: Array.from({ length: 10 }, (_, i) => newTask(s, i)), durability: Durability.ACCEPTED });
      const flushed = await client.flush({});
      expect(flushed).toMatchObject({ tasksWritten: 9, tasksDeadLettered: 1, sessionsWritten: 0, sessionsDeadLettered: 0 });
    } finally {
      await sql`drop trigger if exists poison_flush`.execute(store.db);
      // The suite's other dead-letter case counts the whole table.
      await sql`delete from dead_letters where record_key = ${JSON.stringify([s, "TASK_0003"])}`.execute(store.db);
      await server.close();
      await store.close();
    }
  });

  it("shows every write-path counter an alert watches from the start, at 0, labelled by write path", async () => {
    const server = await startTestServer({ PERSISTENCE_SQL_URL: target().url });
    try {
      const metrics = await (await fetch(`${server.url}/metrics`)).text();
      for (const series of [
        'persistence_flush_retries_total{write_path="translation"} 0',
        'persistence_dead_letters_total{write_path="translation",table="translation_sessions"} 0',
        'persistence_dead_letters_total{write_path="translation",table="translation_tasks"} 0',
        'persistence_buffer_full_total{write_path="translation"} 0',
        'persistence_wal_append_failures_total{write_path="translation"} 0',
        'persistence_data_loss_total{write_path="translation"} 0',
        'persistence_flush_seconds_count{write_path="translation"} 0',
        'persistence_rows_per_statement_count{write_path="translation"} 0',
      ]) {
        expect(metrics).toContain(series);
      }
    } finally {
      await server.close();
    }
  });

  it("moves the one row the database refuses to the dead letters and stores the other 999", async () => {
    const store = await openServiceSql(target().url);
    const server = await startTestServer({ PERSISTENCE_SQL_URL: target().url, PERSISTENCE_FLUSH_INTERVAL_MS: "60000" });
    const s = newSession();
    try {
      await poisonTask(store, "poison", s, "TASK_0500");
      const client = server.client(TranslationService);
      const reply = await client.batchUpsertTasks({ tasks: Array.from({ length: 1000 }, (_, i) => newTask(s, i)), durability: Durability.COMMITTED });
      expect(reply.durability).toBe(Durability.COMMITTED);
      const { rows } = await sql<{ n: number }>`select count(*) as n from translation_tasks where session_id = ${s}`.execute(store.db);
      expect(Number(rows[0]?.n)).toBe(999);
      const dead = await sql<{ table_name: string; record_key: string; reason: string; payload: string }>`select * from dead_letters`.execute(store.db);
      expect(dead.rows).toHaveLength(1);
      expect(dead.rows[0]).toMatchObject({ table_name: "translation_tasks", record_key: JSON.stringify([s, "TASK_0500"]) });
      expect(dead.rows[0]?.reason).toContain("poisoned row");
      expect(JSON.parse(dead.rows[0]!.payload).source_text[0]).toBe("Hello, adventurer #500!");
      expect(Number((await client.getRecoveryStatus({})).deadLetters)).toBe(1);
      expect(await (await fetch(`${server.url}/metrics`)).text()).toContain(
        'persistence_dead_letters_total{write_path="translation",table="translation_tasks"} 1',
      );
    } finally {
      await sql`drop trigger if exists poison`.execute(store.db);
      await server.close();
      await store.close();
    }
  });

  it("leaves unflushed records in the write-ahead log at shutdown and commits them at the next start", async () => {
    const shared = { PERSISTENCE_SQL_URL: target().url, PERSISTENCE_FLUSH_INTERVAL_MS: "3600000" };
    const dataDir = mkdtempSync(path.join(os.tmpdir(), "persistence-wal-"));
    const first = await startTestServer({ ...shared, PERSISTENCE_DATA_DIR: dataDir, PERSISTENCE_SHUTDOWN_TIMEOUT_MS: "0" });
    const s = newSession();
    await first.client(TranslationService).batchUpsertTasks({ tasks: Array.from({ length: 30 }, (_, i) => newTask(s, i)), durability: Durability.LOGGED });
    await first.app.close();
    const second = await startTestServer({ ...shared, PERSISTENCE_DATA_DIR: dataDir });
    try {
      const status = await second.client(TranslationService).getRecoveryStatus({});
      expect(Number(status.walReplayedRecords)).toBe(30);
      await second.client(TranslationService).flush({});
      const store = await openServiceSql(target().url);
      const { rows } = await sql<{ n: number }>`select count(*) as n from translation_tasks where session_id = ${s}`.execute(store.db);
      await store.close();
      expect(Number(rows[0]?.n)).toBe(30);
    } finally {
      await second.close();
      rmSync(dataDir, { recursive: true, force: true });
    }
  });
});

describe("translation-writes on MariaDB while the database is unreachable", () => {
  const user = `pt_outage_${process.pid}`;
  const password = secret("Outage-pass-1");
  const database = `pt_outage_${process.pid}`;
  let server: TestServer;
  let store: SqlBackend;

  async function reachable(yes: boolean) {
    await withMysql(async (conn) => {
      await conn.query(`alter user '${user}'@'%' account ${yes ? "unlock" : "lock"}`);
      if (!yes) {
        const [rows] = await conn.query(`select id from information_schema.processlist where user = ?`, [user]);
        for (const { id } of rows as { id: number }[]) await conn.query(`kill ${id}`).catch(() => undefined);
      }
    });
  }

  beforeAll(async () => {
    await withMysql(async (conn) => {
      await conn.query(`drop user if exists '${user}'@'%'`);
      await conn.query(`create user '${user}'@'%' identified by '${password}'`);
      await conn.query(`grant all on \`${database}\`.* to '${user}'@'%'`);
    });
    server = await startTestServer({
      PERSISTENCE_SQL_URL: `mysql://${user}:${password}@127.0.0.1:3306/${database}`,
      PERSISTENCE_FLUSH_INTERVAL_MS: "50",
      PERSISTENCE_BUFFER_MAX_RECORDS: "500",
    });
    store = await openServiceSql(`mysql://root@127.0.0.1:3306/${database}`);
  });
  afterAll(async () => {
    await reachable(true);
    await server?.close();
    await store?.close();
    await withMysql(async (conn) => {
      await conn.query(`drop user if exists '${user}'@'%'`);
      await conn.query(`drop database if exists \`${database}\``);
    });
  });

  it("keeps every accepted record, refuses new ones only once the buffer is full, and commits all when it is back", async () => {
    const client = server.client(TranslationService);
    const s = newSession();
    await reachable(false);
    // A COMMITTED write waits for a database that does not answer: the caller's deadline ends the wait,
    // and the record stays buffered like any other.
    const waiting = await errorOf(client.batchUpsertTasks({ tasks: [newTask(s, 0)], durability: Durability.COMMITTED }, { timeoutMs: 300 }));
    expect(waiting.code).toBe(Code.DeadlineExceeded);
    expect(server.app.status().bufferRecords).toBe(1);

    let accepted = 0;
    let refused: ConnectError | undefined;
    for (let batch = 0; batch < 20 && !refused; batch++) {
      try {
        const reply = await client.batchUpsertTasks({ tasks: Array.from({ length: 50 }, (_, i) => newTask(s, batch * 50 + i)) });
        expect(reply.durability).toBe(Durability.LOGGED);
        accepted += 50;
      } catch (err) {
        refused = ConnectError.from(err);
      }
    }
    expect(accepted).toBe(500);
    expect(refused?.code).toBe(Code.ResourceExhausted);
    expect(retryDelayMs(refused!)).toBeGreaterThan(0);

    const during = await client.getRecoveryStatus({});
    expect(during.databaseReachable).toBe(false);
    expect(Number(during.retryBacklog)).toBe(500);
    expect(Number(during.walPendingRecords)).toBeGreaterThanOrEqual(500);
    await healthUntil(server.url, (h) => h.status === 503);

    await reachable(true);
    const flushed = await client.flush({});
    expect(flushed.status).toBe("flushed");
    const { rows } = await sql<{ n: number }>`select count(*) as n from translation_tasks where session_id = ${s}`.execute(store.db);
    expect(Number(rows[0]?.n)).toBe(500);
    const after = await client.getRecoveryStatus({});
    expect(after.databaseReachable).toBe(true);
    expect(Number(after.retryBacklog)).toBe(0);
    expect(await (await fetch(`${server.url}/metrics`)).text()).toMatch(/persistence_flush_retries_total\{write_path="translation"\} [1-9]/);
  });
});
