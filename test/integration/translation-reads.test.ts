import { timestampDate, timestampFromMs } from "@bufbuild/protobuf/wkt";
import { Code } from "@connectrpc/connect";
import { Durability, SortOrder } from "../../gen/persistence/v1/common_pb";
import { SessionSortField, SessionStatus, TaskStatus, TranslationService, WatchEventType, type Task } from "../../gen/persistence/v1/translation_pb";
import { openServiceSql } from "../../server/schema";
import { createLogger } from "../../server/core/logger";
import { scheduleCleanup } from "../../server/translation/translation.cleanup";
import { errorOf } from "../support/errors";
import { describeEachDialect } from "../support/sql-targets";
import { PROTOCOLS, startTestServer, type TestServer } from "../support/test-server";

let unique = 0;
const newId = (prefix: string) => `${prefix}-${process.pid}-${Date.now().toString(36)}-${++unique}`;

/** 1,000 tasks over 3 sheets: 400 completed, 100 failed, 150 processing, 350 pending. */
function statusOf(n: number): TaskStatus {
  if (n < 400) return TaskStatus.COMPLETED;
  if (n < 500) return TaskStatus.FAILED;
  if (n < 650) return TaskStatus.PROCESSING;
  return TaskStatus.PENDING;
}
const SHEETS = ["Dialogue", "Items", "Quests"];

function sessionTasks(sessionId: string, count: number, stamp: number) {
  return Array.from({ length: count }, (_, n) => ({
    sessionId,
    // Ids out of spreadsheet order, so ordering by position is visible.
    taskId: `TASK_${String((n * 7919) % count).padStart(4, "0")}`,
    batchId: `BATCH_${n % 10}`,
    sheetName: SHEETS[n % 3],
    rowIndex: Math.floor(n / 3),
    columnName: "Text",
    sourceText: `line ${n}`,
    status: statusOf(n),
    confidence: statusOf(n) === TaskStatus.COMPLETED ? 0.9 : undefined,
    updatedAt: timestampFromMs(stamp),
  }));
}

describeEachDialect("translation-reads", (target) => {
  let server: TestServer;
  const client = () => server.client(TranslationService);
  const sessionId = newId("big");
  const created = Date.now() - 3_600_000;

  beforeAll(async () => {
    server = await startTestServer({ PERSISTENCE_SQL_URL: target().url, PERSISTENCE_FLUSH_INTERVAL_MS: "60000" });
    await client().batchUpsertSessions({
      sessions: [
        {
          sessionId,
          filename: "quests.xlsx",
          status: SessionStatus.PROCESSING,
          llmProvider: "openai",
          gameInfo: { game_name: "Saga", target_language: "ja" },
          totalTasks: 1200, // declared by the client, which has sent 1,000 of them so far
          createdAt: timestampFromMs(created),
          updatedAt: timestampFromMs(created),
        },
      ],
    });
    await client().batchUpsertTasks({ tasks: sessionTasks(sessionId, 1000, created + 1000), durability: Durability.COMMITTED });
  });
  afterAll(async () => {
    await server?.close();
  });

  it.each(PROTOCOLS)("shows a session with its declared total, the other counters from its 1,000 stored tasks, and the derived figures (%s)", async (protocol) => {
    const session = (await server.client(TranslationService, protocol).getSession({ sessionId })).session!;
    expect(session).toMatchObject({
      sessionId,
      filename: "quests.xlsx",
      status: SessionStatus.PROCESSING,
      llmProvider: "openai",
      gameInfo: { game_name: "Saga", target_language: "ja" },
      totalTasks: 1200,
      completedTasks: 400,
      failedTasks: 100,
      processingTasks: 150,
      pendingTasks: 550,
      storedTasks: { total: 1000n, pending: 350n, processing: 150n, completed: 400n, failed: 100n, cancelled: 0n },
    });
    expect(session.progress).toBeCloseTo((400 / 1200) * 100, 9);
    // 400 done in the hour since creation: the 700 left of the declared 1,200 take about 105 more minutes.
    const eta = timestampDate(session.estimatedCompletion!).getTime();
    expect(eta - Date.now()).toBeGreaterThan(100 * 60_000);
    expect(eta - Date.now()).toBeLessThan(110 * 60_000);
  });

  it("shows client-reported counters for a session without stored tasks, and no estimate", async () => {
    const id = newId("bare");
    await client().batchUpsertSessions({
      sessions: [{ sessionId: id, filename: "a.xlsx", totalTasks: 10, completedTasks: 4, failedTasks: 1, processingTasks: 2 }],
    });
    const session = (await client().getSession({ sessionId: id })).session!;
    expect(session).toMatchObject({ totalTasks: 10, completedTasks: 4, failedTasks: 1, processingTasks: 2, pendingTasks: 3, progress: 40 });
    const empty = newId("empty");
    await client().batchUpsertSessions({ sessions: [{ sessionId: empty, filename: "b.xlsx" }] });
    const none = (await client().getSession({ sessionId: empty })).session!;
    expect(none.progress).toBe(0);
    expect(none.estimatedCompletion).toBeUndefined();
  });

  it("reflects records this instance accepted but has not flushed", async () => {
    const id = newId("ryw");
    await client().batchUpsertSessions({ sessions: [{ sessionId: id, filename: "ryw.xlsx" }], durability: Durability.ACCEPTED });
    await client().batchUpsertTasks({ tasks: sessionTasks(id, 3, Date.now()), durability: Durability.ACCEPTED });
    expect((await client().getSession({ sessionId: id })).session?.totalTasks).toBe(3);
    await client().batchUpsertTasks({ tasks: [{ sessionId: id, taskId: "TASK_0001", status: TaskStatus.FAILED }], durability: Durability.ACCEPTED });
    expect((await client().getTask({ sessionId: id, taskId: "TASK_0001" })).task?.status).toBe(TaskStatus.FAILED);
    expect((await client().listSessionTasks({ sessionId: id })).total).toBe(3);
  });

  it("answers NOT_FOUND for unknown sessions and tasks, and INVALID_ARGUMENT for malformed ids", async () => {
    expect((await errorOf(client().getSession({ sessionId: "no-such-session" }))).code).toBe(Code.NotFound);
    expect((await errorOf(client().listSessionTasks({ sessionId: "no-such-session" }))).code).toBe(Code.NotFound);
    expect((await errorOf(client().getTask({ taskId: "NO_SUCH_TASK" }))).code).toBe(Code.NotFound);
    expect((await errorOf(client().getSession({ sessionId: "../etc/passwd" }))).code).toBe(Code.InvalidArgument);
    expect((await errorOf(client().restoreSession({ sessionId: "no-such-session" }))).code).toBe(Code.NotFound);
  });

  it("lists a session's tasks in sheet, row, column order with filters and paging", async () => {
    const first = await client().listSessionTasks({ sessionId, pageSize: 100 });
    expect(first).toMatchObject({ total: 1000, page: 1, pageSize: 100, totalPages: 10 });
    expect(first.items).toHaveLength(100);
    const position = (t: Task) => [t.sheetName, String(t.rowIndex).padStart(6, "0"), t.columnName, t.taskId].join("|");
    const positions = first.items.map(position);
    expect(positions).toEqual([...positions].sort());
    expect(first.items[0]).toMatchObject({ sheetName: "Dialogue", rowIndex: 0 });

    const third = await client().listSessionTasks({ sessionId, pageSize: 100, page: 3 });
    expect(third.page).toBe(3);
    const pending = await client().listSessionTasks({ sessionId, status: [TaskStatus.PENDING], sheetName: "Items" });
    expect(pending.total).toBe(116);
    expect(pending.items.every((t) => t.status === TaskStatus.PENDING && t.sheetName === "Items")).toBe(true);
    expect(pending.pageSize).toBe(20);
    expect((await errorOf(client().listSessionTasks({ sessionId, pageSize: 101 }))).code).toBe(Code.InvalidArgument);
  });

  it("walks every task exactly once with page tokens, and page numbers agree with them", async () => {
    const seen: string[] = [];
    let token = "";
    let pages = 0;
    do {
      const page = await client().listSessionTasks({ sessionId, pageSize: 100, pageToken: token });
      pages++;
      expect(page.page).toBe(pages);
      seen.push(...page.items.map((t) => t.taskId));
      const byNumber = await client().listSessionTasks({ sessionId, pageSize: 100, page: pages });
      expect(byNumber.items.map((t) => t.taskId)).toEqual(page.items.map((t) => t.taskId));
      token = page.nextPageToken;
    } while (token);
    expect(pages).toBe(10);
    expect(new Set(seen).size).toBe(1000);
    const changed = await errorOf(
      client().listSessionTasks({
        sessionId,
        pageSize: 100,
        status: [TaskStatus.PENDING],
        pageToken: (await client().listSessionTasks({ sessionId, pageSize: 100 })).nextPageToken,
      }),
    );
    expect(changed.code).toBe(Code.InvalidArgument);
    expect(changed.rawMessage).toContain("page_token");
  });

  it("lists sessions with filters, both sorts and paging", async () => {
    const provider = newId("provider");
    const ids = Array.from({ length: 5 }, (_, i) => newId(`list${i}`));
    const base = Date.now() - 100_000;
    await client().batchUpsertSessions({
      sessions: ids.map((id, i) => ({
        sessionId: id,
        filename: `${i}.xlsx`,
        llmProvider: provider,
        status: i % 2 ? SessionStatus.COMPLETED : SessionStatus.PENDING,
        createdAt: timestampFromMs(base + i * 1000),
        updatedAt: timestampFromMs(base + (10 - i) * 1000),
      })),
    });
    const newestFirst = await client().listSessions({ llmProvider: provider });
    expect(newestFirst.items.map((s) => s.sessionId)).toEqual([...ids].reverse());
    expect(newestFirst).toMatchObject({ total: 5, totalPages: 1, nextPageToken: "" });
    const byUpdate = await client().listSessions({ llmProvider: provider, sortBy: SessionSortField.UPDATED_AT, sortOrder: SortOrder.ASC });
    expect(byUpdate.items.map((s) => s.sessionId)).toEqual([...ids].reverse());
    const completed = await client().listSessions({ llmProvider: provider, status: [SessionStatus.COMPLETED] });
    expect(completed.items.map((s) => s.sessionId)).toEqual([ids[3], ids[1]]);
    const window = await client().listSessions({ llmProvider: provider, fromDate: timestampFromMs(base + 1000), toDate: timestampFromMs(base + 3000) });
    expect(window.items.map((s) => s.sessionId)).toEqual([ids[2], ids[1]]);

    const page1 = await client().listSessions({ llmProvider: provider, pageSize: 2 });
    const page2 = await client().listSessions({ llmProvider: provider, pageSize: 2, pageToken: page1.nextPageToken });
    const page3 = await client().listSessions({ llmProvider: provider, pageSize: 2, pageToken: page2.nextPageToken });
    expect([...page1.items, ...page2.items, ...page3.items].map((s) => s.sessionId)).toEqual([...ids].reverse());
    expect(page3).toMatchObject({ page: 3, totalPages: 3, nextPageToken: "" });
  });

  it("finds a task by id alone when it is unique, and asks for the session when it is not", async () => {
    const a = newId("a");
    const b = newId("b");
    await client().batchUpsertTasks({
      tasks: [
        { sessionId: a, taskId: "SHARED_1", sourceText: "in a" },
        { sessionId: b, taskId: "SHARED_1", sourceText: "in b" },
        { sessionId: a, taskId: `ONLY_${unique}`, sourceText: "alone" },
      ],
    });
    expect((await client().getTask({ taskId: `ONLY_${unique}` })).task?.sourceText).toBe("alone");
    expect((await client().getTask({ taskId: "SHARED_1", sessionId: b })).task?.sourceText).toBe("in b");
    const ambiguous = await errorOf(client().getTask({ taskId: "SHARED_1" }));
    expect(ambiguous.code).toBe(Code.FailedPrecondition);
    expect(ambiguous.rawMessage).toContain(a);
    expect(ambiguous.rawMessage).toContain(b);
  });

  it("lists tasks across sessions with every filter", async () => {
    expect((await client().listTasks({ sessionId, batchId: "BATCH_3" })).total).toBe(100);
    expect((await client().listTasks({ sessionId, status: [TaskStatus.FAILED, TaskStatus.PROCESSING] })).total).toBe(250);
    expect((await client().listTasks({ sessionId, sheetName: "Quests", status: [TaskStatus.COMPLETED] })).total).toBe(133);
    const recent = await client().listTasks({ sessionId, fromDate: timestampFromMs(created + 500), toDate: timestampFromMs(created + 2000) });
    expect(recent.total).toBe(1000);
    expect((await client().listTasks({ sessionId, fromDate: timestampFromMs(created + 5000) })).total).toBe(0);
    const across = await client().listTasks({ batchId: "BATCH_3", pageSize: 50 });
    expect(across.total).toBeGreaterThanOrEqual(100);
    expect(across.items.every((t) => t.batchId === "BATCH_3")).toBe(true);
  });

  it("reports counts by status, rates, averages and storage from the database's catalog", async () => {
    const id = newId("stats");
    await client().batchUpsertSessions({ sessions: [{ sessionId: id, filename: "s.xlsx", status: SessionStatus.COMPLETED }] });
    await client().batchUpsertTasks({
      tasks: [
        { sessionId: id, taskId: "A", status: TaskStatus.COMPLETED, durationMs: 1000, confidence: 0.5 },
        { sessionId: id, taskId: "B", status: TaskStatus.FAILED, durationMs: 3000 },
      ],
    });
    const stats = await client().getStats({});
    // The store is shared with the other cases of this suite: check the figures against each other.
    const sum = (m: Record<string, bigint>) => Object.values(m).reduce((a, b) => a + Number(b), 0);
    expect(Number(stats.totalSessions)).toBe(sum(stats.sessionsByStatus));
    expect(Number(stats.totalTasks)).toBe(sum(stats.tasksByStatus));
    expect(Number(stats.tasksByStatus.completed)).toBeGreaterThanOrEqual(401);
    expect(Number(stats.tasksByStatus.failed)).toBeGreaterThanOrEqual(101);
    const completed = Number(stats.tasksByStatus.completed);
    expect(stats.successRate).toBeCloseTo(completed / (completed + Number(stats.tasksByStatus.failed)), 6);
    expect(stats.averageTaskMs).toBeGreaterThan(0);
    expect(stats.averageConfidence).toBeGreaterThan(0.5);
    expect(stats.averageConfidence).toBeLessThan(0.9);
    const tasksTable = stats.storage.find((t) => t.table === "translation_tasks");
    expect(Number(tasksTable?.dataBytes)).toBeGreaterThan(0);
    expect(Number(tasksTable?.indexBytes)).toBeGreaterThan(0);
    if (target().dialect === "sqlite") expect(Number(tasksTable?.rows)).toBe(Number(stats.totalTasks));
    expect(stats.storage.map((t) => t.table)).toEqual(["translation_sessions", "translation_tasks", "translation_tombstones", "dead_letters"]);
    expect(Number(stats.writePath?.flushes)).toBeGreaterThan(0);
  });

  it("runs the translation backend's start-up recovery: list incomplete, restore each, resume", async () => {
    const incomplete = await client().listIncompleteSessions({});
    expect(incomplete.count).toBe(incomplete.sessions.length);
    const mine = incomplete.sessions.find((s) => s.sessionId === sessionId);
    expect(mine).toMatchObject({ pendingTasks: 550, processingTasks: 150, totalTasks: 1200 });
    const times = incomplete.sessions.map((s) => Number(s.createdAt?.seconds));
    expect(times).toEqual([...times].sort((x, y) => y - x));
    expect(incomplete.sessions.every((s) => s.status === SessionStatus.PENDING || s.status === SessionStatus.PROCESSING)).toBe(true);

    const restored = await client().restoreSession({ sessionId });
    expect(restored).toMatchObject({ sessionId, tasksCount: 500 });
    expect(restored.session?.totalTasks).toBe(1200);
    expect(restored.session?.storedTasks?.total).toBe(1000n);
    expect(restored.tasks.every((t) => t.status === TaskStatus.PENDING || t.status === TaskStatus.PROCESSING)).toBe(true);
    const order = restored.tasks.map((t) => [t.sheetName, String(t.rowIndex).padStart(6, "0"), t.columnName].join("|"));
    expect(order).toEqual([...order].sort());

    // Restoring has no side effects; resuming writes the remaining work.
    expect((await client().getSession({ sessionId })).session?.completedTasks).toBe(400);
    const chunks = [];
    for await (const chunk of client().streamRestoreSession({ sessionId, chunkSize: 120 })) chunks.push(chunk);
    expect(chunks.map((c) => c.tasks.length)).toEqual([120, 120, 120, 120, 20]);
    expect(chunks[0]).toMatchObject({ tasksCount: 500, session: { sessionId } });
    expect(chunks.slice(1).every((c) => c.session === undefined)).toBe(true);
    expect(chunks.flatMap((c) => c.tasks.map((t) => t.taskId))).toEqual(restored.tasks.map((t) => t.taskId));
  });
});

describeEachDialect("translation-management", (target) => {
  let server: TestServer;
  const client = () => server.client(TranslationService);
  beforeAll(async () => {
    server = await startTestServer({ PERSISTENCE_SQL_URL: target().url, PERSISTENCE_FLUSH_INTERVAL_MS: "60000" });
  });
  afterAll(async () => {
    await server?.close();
  });

  async function seed(sessionId: string, tasks: number, stamp = Date.now() - 60_000) {
    await client().batchUpsertSessions({ sessions: [{ sessionId, filename: "x.xlsx", status: SessionStatus.PROCESSING, updatedAt: timestampFromMs(stamp) }] });
    await client().batchUpsertTasks({ tasks: sessionTasks(sessionId, tasks, stamp), durability: Durability.COMMITTED });
  }

  it("deletes a session with its stored and buffered tasks", async () => {
    const id = newId("del");
    await seed(id, 30);
    await client().batchUpsertTasks({ tasks: [{ sessionId: id, taskId: "LATE_1", sourceText: "buffered" }], durability: Durability.ACCEPTED });
    const reply = await client().deleteSession({ sessionId: id });
    expect(reply).toMatchObject({ status: "deleted", sessionId: id, deletedTasks: 30 });
    await client().flush({});
    expect((await errorOf(client().getSession({ sessionId: id }))).code).toBe(Code.NotFound);
    expect((await client().listTasks({ sessionId: id })).total).toBe(0);
    expect((await errorOf(client().deleteSession({ sessionId: id }))).code).toBe(Code.NotFound);
  });

  it("keeps a deleted session deleted when another instance flushes older records later, and lets newer ones recreate it", async () => {
    const id = newId("late");
    const before = Date.now() - 10_000;
    await seed(id, 5, before - 10_000);
    const other = await startTestServer({ PERSISTENCE_SQL_URL: target().url, PERSISTENCE_FLUSH_INTERVAL_MS: "60000" });
    try {
      await other.client(TranslationService).batchUpsertTasks({
        tasks: sessionTasks(id, 5, before).map((t) => ({ ...t, targetText: "stale" })),
        durability: Durability.ACCEPTED,
      });
      await other.client(TranslationService).batchUpsertSessions({
        sessions: [{ sessionId: id, filename: "x.xlsx", completedTasks: 5, updatedAt: timestampFromMs(before) }],
        durability: Durability.ACCEPTED,
      });
      await client().deleteSession({ sessionId: id });
      await other.client(TranslationService).flush({});
      expect((await errorOf(client().getSession({ sessionId: id }))).code).toBe(Code.NotFound);
      expect((await client().listTasks({ sessionId: id })).total).toBe(0);

      await other.client(TranslationService).batchUpsertSessions({ sessions: [{ sessionId: id, filename: "again.xlsx" }], durability: Durability.COMMITTED });
      expect((await client().getSession({ sessionId: id })).session?.filename).toBe("again.xlsx");
    } finally {
      await other.close();
    }
  });

  it("hides a session on a soft delete, and its late records do not bring it back", async () => {
    const id = newId("soft");
    await seed(id, 12);
    expect(await client().deleteSession({ sessionId: id, soft: true })).toMatchObject({ status: "soft_deleted", deletedTasks: 0, hiddenTasks: 12 });
    expect((await errorOf(client().getSession({ sessionId: id }))).code).toBe(Code.NotFound);
    expect((await client().listSessions({ pageSize: 100 })).items.some((s) => s.sessionId === id)).toBe(false);
    expect((await client().listIncompleteSessions({})).sessions.some((s) => s.sessionId === id)).toBe(false);
    await client().batchUpsertSessions({ sessions: [{ sessionId: id, filename: "x.xlsx", updatedAt: timestampFromMs(Date.now() - 30_000) }], durability: Durability.COMMITTED });
    expect((await errorOf(client().getSession({ sessionId: id }))).code).toBe(Code.NotFound);
  });

  it("updates a session's status at COMMITTED durability and keeps the reason", async () => {
    const id = newId("status");
    await client().batchUpsertSessions({ sessions: [{ sessionId: id, filename: "s.xlsx", metadata: { owner: "ops" } }] });
    const updated = await client().updateSessionStatus({ sessionId: id, status: SessionStatus.CANCELLED, reason: "user stopped it" });
    expect(updated.session).toMatchObject({ status: SessionStatus.CANCELLED, metadata: { owner: "ops", status_reason: "user stopped it" } });
    expect(server.app.status().bufferRecords).toBe(0);
    expect((await errorOf(client().updateSessionStatus({ sessionId: "no-such-session", status: SessionStatus.FAILED }))).code).toBe(Code.NotFound);
    expect((await errorOf(client().updateSessionStatus({ sessionId: id }))).code).toBe(Code.InvalidArgument);
  });
});

describeEachDialect("translation-cleanup", (target) => {
  const DAY = 86_400_000;
  it("counts on a dry run what the real run then deletes: expired sessions by status and soft-deleted ones", async () => {
    const server = await startTestServer({ PERSISTENCE_SQL_URL: target().url });
    const client = server.client(TranslationService);
    try {
      const session = (id: string, status: SessionStatus, ageDays: number) => ({
        sessionId: id,
        filename: `${id}.xlsx`,
        status,
        updatedAt: timestampFromMs(Date.now() - ageDays * DAY),
      });
      const old = { completed: newId("c100"), failed: newId("f40"), cancelled: newId("x31") };
      const kept = [newId("c80"), newId("f20"), newId("p400")];
      const soft = newId("soft");
      await client.batchUpsertSessions({
        sessions: [
          session(old.completed, SessionStatus.COMPLETED, 100),
          session(old.failed, SessionStatus.FAILED, 40),
          session(old.cancelled, SessionStatus.CANCELLED, 31),
          session(kept[0]!, SessionStatus.COMPLETED, 80),
          session(kept[1]!, SessionStatus.FAILED, 20),
          session(kept[2]!, SessionStatus.PROCESSING, 400),
          session(soft, SessionStatus.PENDING, 1),
        ],
        durability: Durability.COMMITTED,
      });
      await client.batchUpsertTasks({ tasks: sessionTasks(old.completed, 7, Date.now() - 100 * DAY), durability: Durability.COMMITTED });
      await client.deleteSession({ sessionId: soft, soft: true });

      const dry = await client.cleanupSessions({ dryRun: true });
      expect(dry.dryRun).toBe(true);
      expect(dry.sessionsByStatus).toMatchObject({ completed: expect.any(Number), deleted: expect.any(Number) });
      expect(dry.deletedSessions).toBeGreaterThanOrEqual(4);
      expect(dry.deletedTasks).toBeGreaterThanOrEqual(7);
      expect((await client.getSession({ sessionId: old.completed })).session?.totalTasks).toBe(7);

      const real = await client.cleanupSessions({});
      expect(real).toMatchObject({ dryRun: false, deletedSessions: dry.deletedSessions, deletedTasks: dry.deletedTasks });
      expect(real.sessionsByStatus).toEqual(dry.sessionsByStatus);
      for (const id of Object.values(old)) expect((await errorOf(client.getSession({ sessionId: id }))).code).toBe(Code.NotFound);
      for (const id of kept) expect((await client.getSession({ sessionId: id })).session?.sessionId).toBe(id);
      expect((await client.listTasks({ sessionId: old.completed })).total).toBe(0);
      expect((await client.cleanupSessions({ dryRun: true })).deletedSessions).toBe(0);

      const shorter = await client.cleanupSessions({ completedDays: 30, dryRun: true });
      expect(shorter.sessionsByStatus.completed).toBe(1);
      expect((await errorOf(client.cleanupSessions({ failedDays: 0 }))).code).toBe(Code.InvalidArgument);
    } finally {
      await server.close();
    }
  });

  it("runs on a schedule on one instance at a time", async () => {
    const env = { PERSISTENCE_SQL_URL: target().url, PERSISTENCE_CLEANUP_INTERVAL_MS: "300" };
    const [a, b] = await Promise.all([startTestServer(env), startTestServer(env)]);
    try {
      const id = newId("sched");
      await a.client(TranslationService).batchUpsertSessions({
        sessions: [{ sessionId: id, filename: "s.xlsx", status: SessionStatus.COMPLETED, updatedAt: timestampFromMs(Date.now() - 200 * DAY) }],
        durability: Durability.COMMITTED,
      });
      const deadline = Date.now() + 10_000;
      while (Date.now() < deadline) {
        const gone = await errorOf(a.client(TranslationService).getSession({ sessionId: id })).catch(() => undefined);
        if (gone?.code === Code.NotFound) break;
        await new Promise((r) => setTimeout(r, 100));
      }
      expect((await errorOf(a.client(TranslationService).getSession({ sessionId: id }))).code).toBe(Code.NotFound);
      const runs = [...a.logs, ...b.logs].filter((l) => l.msg === "scheduled cleanup done");
      expect(runs.length).toBeGreaterThan(0);
      // Each run holds the lease for the whole interval: runs never overlap in time across instances.
      const times = runs.map((l) => Date.parse(String(l.time))).sort((x, y) => x - y);
      for (let i = 1; i < times.length; i++) expect(times[i]! - times[i - 1]!).toBeGreaterThan(150);
    } finally {
      await Promise.all([a.close(), b.close()]);
    }
  });
});

describeEachDialect("translation-cleanup-schedule", (target) => {
  it("stops only once a run in progress has ended, so the database is not closed under it", async () => {
    const store = await openServiceSql(target().url);
    const logger = createLogger("error", { write: () => undefined });
    let release!: () => void;
    let started!: () => void;
    const runStarted = new Promise<void>((r) => (started = r));
    let finished = false;
    const schedule = scheduleCleanup(store, 50, `test-${process.pid}-${Date.now()}`, logger, async () => {
      started();
      await new Promise<void>((r) => (release = r));
      finished = true;
      return { dryRun: false, deletedSessions: 0, deletedTasks: 0, sessionsByStatus: {} };
    });
    try {
      await runStarted;
      let stopped = false;
      const stopping = schedule.stop().then(() => (stopped = true));
      await new Promise((r) => setTimeout(r, 100));
      expect(stopped).toBe(false);
      release();
      await stopping;
      expect(finished).toBe(true);
    } finally {
      await store.close();
    }
  });
});

describeEachDialect("translation-watch", (target) => {
  it("streams a snapshot, then each committed change, then the deletion", async () => {
    const server = await startTestServer({ PERSISTENCE_SQL_URL: target().url, PERSISTENCE_FLUSH_INTERVAL_MS: "60000" });
    const client = server.client(TranslationService, "grpc");
    const id = newId("watch");
    try {
      await client.batchUpsertSessions({ sessions: [{ sessionId: id, filename: "w.xlsx", status: SessionStatus.PROCESSING }], durability: Durability.COMMITTED });
      const stream = client.watchSession({ sessionId: id })[Symbol.asyncIterator]();
      const next = async () => {
        const result = await stream.next();
        if (result.done) throw new Error("the stream ended");
        return result.value;
      };

      const snapshot = await next();
      expect(snapshot).toMatchObject({ type: WatchEventType.SNAPSHOT, session: { sessionId: id, totalTasks: 0 } });

      await client.batchUpsertTasks({ tasks: sessionTasks(id, 3, Date.now()), durability: Durability.COMMITTED });
      const update = await next();
      expect(update?.type).toBe(WatchEventType.UPDATED);
      expect(update?.session?.totalTasks).toBe(3);
      expect(update?.tasks.map((t) => t.taskId).sort()).toEqual(["TASK_0000", "TASK_0001", "TASK_0002"]);

      await client.updateSessionStatus({ sessionId: id, status: SessionStatus.COMPLETED });
      expect((await next())?.session?.status).toBe(SessionStatus.COMPLETED);

      await client.deleteSession({ sessionId: id });
      expect((await next())?.type).toBe(WatchEventType.DELETED);
      expect((await stream.next()).done).toBe(true);
      expect((await errorOf((async () => { for await (const _ of client.watchSession({ sessionId: "no-such-session" })); })())).code).toBe(Code.NotFound);
    } finally {
      await server.close();
    }
  });

  it("ends watch streams when the service stops", async () => {
    const server = await startTestServer({ PERSISTENCE_SQL_URL: target().url });
    const id = newId("stop");
    await server.client(TranslationService).batchUpsertSessions({ sessions: [{ sessionId: id, filename: "s.xlsx" }], durability: Durability.COMMITTED });
    const seen: WatchEventType[] = [];
    const watching = (async () => {
      for await (const event of server.client(TranslationService, "grpc").watchSession({ sessionId: id })) {
        seen.push(event.type);
        if (seen.length === 1) void server.close();
      }
    })();
    await watching;
    expect(seen).toEqual([WatchEventType.SNAPSHOT]);
    await server.close();
  });
});

describeEachDialect("translation-restore-large", (target) => {
  it("restores a session of 100,000 tasks, in one reply and streamed", async () => {
    const server = await startTestServer({ PERSISTENCE_SQL_URL: target().url, PERSISTENCE_FLUSH_MAX_RECORDS: "5000" });
    const client = server.client(TranslationService, "grpc");
    const id = newId("huge");
    try {
      await client.batchUpsertSessions({ sessions: [{ sessionId: id, filename: "huge.xlsx", status: SessionStatus.PROCESSING }] });
      for (let start = 0; start < 100_000; start += 1000) {
        await client.batchUpsertTasks({
          tasks: Array.from({ length: 1000 }, (_, i) => ({
            sessionId: id,
            taskId: `T${start + i}`,
            sheetName: "Sheet",
            rowIndex: start + i,
            columnName: "Text",
            sourceText: `line ${start + i}`,
            status: (start + i) % 10 === 0 ? TaskStatus.COMPLETED : TaskStatus.PENDING,
          })),
          durability: Durability.ACCEPTED,
        });
      }
      const restored = await client.restoreSession({ sessionId: id });
      expect(restored.tasksCount).toBe(90_000);
      expect(restored.tasks[0]?.rowIndex).toBe(1);
      expect(restored.tasks.at(-1)?.rowIndex).toBe(99_999);
      const rows: number[] = [];
      for await (const chunk of client.streamRestoreSession({ sessionId: id, chunkSize: 5000 })) {
        expect(chunk.tasks.length).toBeLessThanOrEqual(5000);
        for (const task of chunk.tasks) rows.push(task.rowIndex ?? -1);
      }
      expect(rows).toEqual(restored.tasks.map((t) => t.rowIndex));
    } finally {
      await server.close();
    }
  }, 120_000);
});
