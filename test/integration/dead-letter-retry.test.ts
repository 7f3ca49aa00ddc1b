import { mkdirSync, existsSync, writeFileSync } from "node:fs";
import path from "node:path";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import { Code } from "@connectrpc/connect";
import { sql } from "kysely";
import { BadRequestSchema } from "../../gen/google/rpc/error_details_pb";
import { AuditResult, AuditService } from "../../gen/persistence/v1/audit_pb";
import { Durability } from "../../gen/persistence/v1/common_pb";
import { SystemService } from "../../gen/persistence/v1/system_pb";
import { TaskStatus, TranslationService } from "../../gen/persistence/v1/translation_pb";
import type { SqlBackend } from "../../server/backends/sql/sql-store";
import { openServiceSql } from "../../server/schema";
import { errorOf } from "../support/errors";
import { restCall } from "../support/rest-call";
import { secret } from "../support/secrets";
import { describeEachDialect } from "../support/sql-targets";
import { startTestServer, type TestServer } from "../support/test-server";
import { eventually } from "../support/wait";

const ADMIN = secret("retry-admin-key-0123456789abcdef");
const OPS = secret("retry-ops-key-0123456789abcdefgh");
const API_KEYS = JSON.stringify([
  { name: "admin", key: ADMIN, scopes: ["admin"] },
  { name: "ops", key: OPS, scopes: ["system:read", "translation:admin"] },
]);
/** An id no dead letter of these tests reaches: the lease test retries nothing. */
const NO_SUCH_LETTER = 9_000_000_000n;
const as = (key: string) => ({ headers: { authorization: `Bearer ${key}` } });

let unique = 0;
/** A session id (or audit actor) no other test uses. */
const newId = (prefix: string) => `${prefix}-${process.pid}-${Date.now().toString(36)}-${++unique}`;

function task(sessionId: string, taskId: string, extra: Record<string, unknown> = {}) {
  return { sessionId, taskId, batchId: "B1", sheetName: "Dialogue", rowIndex: 1, columnName: "Text", sourceText: `text of ${taskId}`, status: TaskStatus.PENDING, ...extra };
}

/** A trigger that makes the database refuse inserting rows of `table` where `condition` holds (on the new row). */
async function refuse(store: SqlBackend, name: string, table: string, condition: string): Promise<void> {
  if (store.dialect === "mysql") {
    await sql.raw(`create trigger ${name} before insert on ${table} for each row
      if ${condition} then signal sqlstate '45000' set message_text = 'refused by the test'; end if`).execute(store.db);
  } else {
    await sql.raw(`create trigger ${name} before insert on ${table} when ${condition} begin select raise(abort, 'refused by the test'); end`).execute(store.db);
  }
}

describeEachDialect("dead-letter-retry", (target) => {
  let server: TestServer;
  let store: SqlBackend;
  const system = () => server.client(SystemService);
  const translation = () => server.client(TranslationService);

  beforeAll(async () => {
    server = await startTestServer({
      PERSISTENCE_SQL_URL: target().url,
      PERSISTENCE_FLUSH_INTERVAL_MS: "60000",
      PERSISTENCE_AUDIT_RETENTION_INTERVAL_MS: "0",
      PERSISTENCE_API_KEYS: API_KEYS,
    });
    store = await openServiceSql(target().url);
  });
  afterAll(async () => {
    await store?.close();
    await server?.close();
  });

  /** The dead letters of one session's tasks, oldest first. */
  const lettersOf = async (sessionId: string) =>
    (await sql<{ id: number; record_key: string; reason: string }>`select id, record_key, reason from dead_letters where record_key like ${`["${sessionId}",%`} order by id`.execute(store.db)).rows.map((r) => ({ ...r, id: Number(r.id) }));
  const storedTasks = async (sessionId: string) =>
    (await sql<{ task_id: string; source_text: string }>`select task_id, source_text from translation_tasks where session_id = ${sessionId} order by task_id`.execute(store.db)).rows;

  it("stores a refused record once the cause is fixed and deletes its dead letter; one still refused becomes a new dead letter", async () => {
    const s = newId("s");
    await refuse(store, "retry_t2", "translation_tasks", `new.session_id = '${s}' and new.task_id = 'T2'`);
    await refuse(store, "retry_t3", "translation_tasks", `new.session_id = '${s}' and new.task_id = 'T3'`);
    try {
      await translation().batchUpsertTasks({ tasks: [task(s, "T1"), task(s, "T2"), task(s, "T3")], durability: Durability.COMMITTED }, as(ADMIN));
      const refused = await lettersOf(s);
      expect(refused.map((l) => l.record_key)).toEqual([JSON.stringify([s, "T2"]), JSON.stringify([s, "T3"])]);
      await sql.raw("drop trigger retry_t2").execute(store.db);
      const ids = refused.map((l) => BigInt(l.id));

      // A dry run says what a retry would do, and changes nothing.
      const dry = await system().retryDeadLetters({ ids, dryRun: true }, as(ADMIN));
      expect(dry).toMatchObject({ dryRun: true, retried: 2n, committed: 0n, deadLetteredAgain: 0n, skipped: 0n, remaining: 2n });
      expect(await lettersOf(s)).toEqual(refused);
      expect((await storedTasks(s)).map((t) => t.task_id)).toEqual(["T1"]);

      const done = await system().retryDeadLetters({ ids }, as(ADMIN));
      expect(done).toMatchObject({ dryRun: false, retried: 2n, committed: 1n, deadLetteredAgain: 1n, skipped: 0n, remaining: 0n });
      expect(done.writePaths).toEqual([expect.objectContaining({ writePath: "translation", retried: 2n, committed: 1n, deadLetteredAgain: 1n, skipped: 0n })]);
      expect(await storedTasks(s)).toEqual([
        { task_id: "T1", source_text: "text of T1" },
        { task_id: "T2", source_text: "text of T2" },
      ]);
      // T3 is refused again: a new dead letter, the old one deleted only after it was stored.
      const left = await lettersOf(s);
      expect(left).toEqual([expect.objectContaining({ record_key: JSON.stringify([s, "T3"]), reason: expect.stringContaining("refused by the test") })]);
      expect(left[0]!.id).toBeGreaterThan(refused[1]!.id);
    } finally {
      await sql.raw("drop trigger if exists retry_t2").execute(store.db);
      await sql.raw("drop trigger if exists retry_t3").execute(store.db);
    }
    // With the cause gone, the new dead letter is retried by write path and table.
    const last = await system().retryDeadLetters({ writePath: "translation", table: "translation_tasks", ids: (await lettersOf(s)).map((l) => BigInt(l.id)) }, as(ADMIN));
    expect(last).toMatchObject({ retried: 1n, committed: 1n, deadLetteredAgain: 0n });
    expect((await storedTasks(s)).map((t) => t.task_id)).toEqual(["T1", "T2", "T3"]);
    expect(await lettersOf(s)).toEqual([]);
  });

  it("does not let a retried value overwrite a newer one stored since: each column keeps the newest stamp", async () => {
    const s = newId("s");
    const older = Date.now() - 60_000;
    await refuse(store, "retry_stale", "translation_tasks", `new.session_id = '${s}' and new.task_id = 'T1'`);
    try {
      await translation().batchUpsertTasks(
        { tasks: [task(s, "T1", { sourceText: "older text", targetText: "older target", updatedAt: timestampFromMs(older) })], durability: Durability.COMMITTED },
        as(ADMIN),
      );
    } finally {
      await sql.raw("drop trigger retry_stale").execute(store.db);
    }
    const [letter] = await lettersOf(s);
    expect(letter).toBeDefined();
    // Written again since, newer, without target_text: that column only the dead letter sets.
    await translation().batchUpsertTasks({ tasks: [{ sessionId: s, taskId: "T1", sourceText: "newer text", updatedAt: timestampFromMs(older + 1000) }], durability: Durability.COMMITTED }, as(ADMIN));

    const done = await system().retryDeadLetters({ ids: [BigInt(letter!.id)] }, as(ADMIN));
    expect(done).toMatchObject({ retried: 1n, committed: 1n });
    const { rows } = await sql<{ source_text: string; target_text: string }>`select source_text, target_text from translation_tasks where session_id = ${s}`.execute(store.db);
    expect(rows).toEqual([{ source_text: "newer text", target_text: "older target" }]);
    expect(await lettersOf(s)).toEqual([]);
  });

  it("reads a record too large for its dead-letter row back from its overflow file, and deletes the file with the row", async () => {
    const s = newId("s");
    const dir = path.join(server.app.config.dataDir, "dead-letters", "translation");
    mkdirSync(dir, { recursive: true });
    const file = `translation_tasks-${Date.now()}-0.json`;
    const stamp = Date.now() * 1000;
    // As the patch writer keeps it: the row names the file, the file holds the whole record.
    writeFileSync(path.join(dir, file), JSON.stringify({ table: "translation_tasks", key: [s, "BIG"], fields: { source_text: ["big text", stamp], status: ["pending", stamp] }, reason: "too large" }));
    const inserted = await store.db
      .withTables<{ dead_letters: { write_path: string; table_name: string; record_key: string; payload: string; reason: string; failed_at: number } }>()
      .insertInto("dead_letters")
      .values({ write_path: "translation", table_name: "translation_tasks", record_key: JSON.stringify([s, "BIG"]), payload: JSON.stringify({ truncated: true, bytes: 9, fields: ["source_text", "status"], file }), reason: "too large", failed_at: stamp })
      .executeTakeFirst();
    const id = BigInt(Number(inserted.insertId ?? (await lettersOf(s))[0]!.id));

    expect(await system().retryDeadLetters({ ids: [id] }, as(ADMIN))).toMatchObject({ retried: 1n, committed: 1n, skipped: 0n });
    expect(await storedTasks(s)).toEqual([{ task_id: "BIG", source_text: "big text" }]);
    expect(existsSync(path.join(dir, file))).toBe(false);
    expect(await lettersOf(s)).toEqual([]);
  });

  it("skips, and keeps, dead letters it cannot retry here: a write path this instance does not open, a record cut down without its file", async () => {
    const s = newId("s");
    const now = Date.now() * 1000;
    const db = store.db.withTables<{ dead_letters: { write_path: string; table_name: string; record_key: string; payload: string; reason: string; failed_at: number } }>();
    await db
      .insertInto("dead_letters")
      .values([
        { write_path: "retired", table_name: "retired_rows", record_key: JSON.stringify([s, "R1"]), payload: "{}", reason: "refused", failed_at: now },
        { write_path: "translation", table_name: "translation_tasks", record_key: JSON.stringify([s, "CUT"]), payload: JSON.stringify({ truncated: true, bytes: 9, fields: ["source_text"] }), reason: "too large", failed_at: now },
      ])
      .execute();
    const letters = await lettersOf(s);
    const done = await system().retryDeadLetters({ ids: letters.map((l) => BigInt(l.id)) }, as(ADMIN));
    expect(done).toMatchObject({ retried: 0n, committed: 0n, skipped: 2n, remaining: 2n });
    expect(done.skippedLetters.map((l) => [l.writePath, l.reason])).toEqual([
      ["retired", "write path retired is not open on this instance"],
      ["translation", "its payload was cut to fit a statement and no file keeps the whole record"],
    ]);
    expect(await lettersOf(s)).toEqual(letters);
    await sql`delete from dead_letters where record_key like ${`["${s}",%`}`.execute(store.db);
  });

  it("chains a retried audit entry at the head, after the gap entry that stands for it, and the chain still verifies", async () => {
    const actor = newId("actor");
    const poisoned = `poison-${actor}`;
    await refuse(store, "retry_audit", "audit_logs", `new.id = '${poisoned}'`);
    const entry = (id?: string) => ({ ...(id ? { id } : {}), action: "session.delete", result: AuditResult.SUCCESS, actor: { type: "user", id: actor }, message: "deleted a session" });
    try {
      await server.client(AuditService).writeLogs({ entries: [entry(), entry(poisoned), entry()], durability: Durability.COMMITTED }, as(ADMIN));
    } finally {
      await sql.raw("drop trigger retry_audit").execute(store.db);
    }
    const { rows: letters } = await sql<Record<string, unknown>>`select * from dead_letters where write_path = 'audit' and record_key = ${JSON.stringify([poisoned])}`.execute(store.db);
    expect(letters).toHaveLength(1);
    const letter = letters[0]!;
    const letterId = Number(letter.id);
    const gapId = `gap-audit-${letterId}`;
    const seqOf = async (id: string) => (await sql<{ seq: number }>`select seq from audit_logs where id = ${id}`.execute(store.db)).rows.map((r) => Number(r.seq))[0];
    // The gap entry is chained once the dead letter is seen.
    await eventually(async () => (await seqOf(gapId)) !== undefined);

    const done = await system().retryDeadLetters({ writePath: "audit", ids: [BigInt(letterId)] }, as(ADMIN));
    expect(done).toMatchObject({ retried: 1n, committed: 1n, deadLetteredAgain: 0n });
    const stored = (await sql<Record<string, unknown>>`select * from audit_logs where id = ${poisoned}`.execute(store.db)).rows[0];
    expect(stored).toMatchObject({ action: "session.delete", actor_id: actor, message: "deleted a session" });
    // Chained after the gap entry, which stays: at that time the entry was refused.
    expect(Number(stored!.seq)).toBeGreaterThan((await seqOf(gapId))!);
    expect((await sql`select id from dead_letters where id = ${letterId}`.execute(store.db)).rows).toEqual([]);
    expect((await server.client(AuditService).verifyAuditChain({}, as(ADMIN))).ok).toBe(true);

    // Retried again (its dead letter back, as a stop between commit and delete would leave it): not chained twice.
    await store.db.insertInto("dead_letters" as never).values({ ...letter, id: undefined } as never).execute();
    const { rows: back } = await sql<{ id: number }>`select id from dead_letters where write_path = 'audit' and record_key = ${JSON.stringify([poisoned])}`.execute(store.db);
    expect(await system().retryDeadLetters({ ids: back.map((r) => BigInt(Number(r.id))) }, as(ADMIN))).toMatchObject({ retried: 1n, committed: 1n });
    expect((await sql`select id from audit_logs where id = ${poisoned}`.execute(store.db)).rows).toHaveLength(1);
    expect((await server.client(AuditService).verifyAuditChain({}, as(ADMIN))).ok).toBe(true);
  });

  it("refuses a bad filter naming the field, and a caller without the admin scope, changing nothing", async () => {
    const s = newId("s");
    await store.db
      .withTables<{ dead_letters: { write_path: string; table_name: string; record_key: string; payload: string; reason: string; failed_at: number } }>()
      .insertInto("dead_letters")
      .values({ write_path: "translation", table_name: "translation_tasks", record_key: JSON.stringify([s, "T1"]), payload: JSON.stringify({ source_text: ["kept", Date.now() * 1000] }), reason: "refused", failed_at: Date.now() * 1000 })
      .execute();
    const letters = await lettersOf(s);
    const fieldOf = async (request: Parameters<ReturnType<typeof system>["retryDeadLetters"]>[0]) => {
      const err = await errorOf(system().retryDeadLetters(request, as(ADMIN)));
      expect(err.code).toBe(Code.InvalidArgument);
      return err.findDetails(BadRequestSchema).flatMap((d) => d.fieldViolations.map((v) => v.field));
    };
    expect(await fieldOf({ writePath: "nope" })).toEqual(["write_path"]);
    expect((await errorOf(system().retryDeadLetters({ writePath: "nope" }, as(ADMIN)))).rawMessage).toContain('no write path "nope" is open on this instance (open: translation');
    expect(await fieldOf({ writePath: "audit", table: "translation_tasks" })).toEqual(["table"]);
    expect(await fieldOf({ table: "nope" })).toEqual(["table"]);
    expect(await fieldOf({ limit: 10_001 })).toEqual(["limit"]);
    expect(await fieldOf({ writePath: "nope", ids: letters.map((l) => BigInt(l.id)) })).toEqual(["write_path"]);
    expect(await fieldOf({ ids: [0n, ...letters.map((l) => BigInt(l.id))] })).toEqual(["ids[0]"]);

    const rest = await restCall(server.url, "POST", "/api/v1/system/dead-letters/retry", { write_path: "nope", dry_run: true }, { authorization: `Bearer ${ADMIN}` });
    expect(rest.status).toBe(400);
    expect(rest.text).toContain("write_path");

    expect((await errorOf(system().retryDeadLetters({ dryRun: true }, as(OPS)))).code).toBe(Code.PermissionDenied);
    expect((await errorOf(system().retryDeadLetters({ ids: letters.map((l) => BigInt(l.id)) }, as(OPS)))).code).toBe(Code.PermissionDenied);
    expect((await errorOf(system().retryDeadLetters({ ids: letters.map((l) => BigInt(l.id)) }))).code).toBe(Code.Unauthenticated);
    expect(await lettersOf(s)).toEqual(letters);
    expect(await storedTasks(s)).toEqual([]);
    await sql`delete from dead_letters where record_key like ${`["${s}",%`}`.execute(store.db);
  });

  it("runs one retry at a time across the instances on the database: another holding the lease gets FAILED_PRECONDITION", async () => {
    expect(await store.acquireLease("dead-letters-retry", "another-instance", 60_000)).toBe(true);
    try {
      const err = await errorOf(system().retryDeadLetters({ ids: [NO_SUCH_LETTER] }, as(ADMIN)));
      expect(err.code).toBe(Code.FailedPrecondition);
      expect(err.rawMessage).toContain("another dead-letter retry is running");
      // A dry run changes nothing, so it needs no lease.
      expect((await system().retryDeadLetters({ ids: [NO_SUCH_LETTER], dryRun: true }, as(ADMIN))).dryRun).toBe(true);
    } finally {
      await store.releaseLease("dead-letters-retry", "another-instance");
    }
    expect(await system().retryDeadLetters({ ids: [NO_SUCH_LETTER] }, as(ADMIN))).toMatchObject({ dryRun: false, retried: 0n, remaining: 0n });
  });
});
