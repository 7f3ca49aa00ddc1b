import { randomUUID } from "node:crypto";
import { createPersistenceClient, createTranslationBatcher, recoverIncompleteSessions, SessionStatus, TaskStatus } from "../../clients/src/index";
import { BackendV2Client, TIMEOUTS, type Json } from "../support/backend-v2-client";
import { restCall, RFC3339_UTC } from "../support/rest-call";
import { describeEachDialect } from "../support/sql-targets";
import { startTestServer, type TestServer } from "../support/test-server";

/**
 * The original design's API guide, quick start and client, replayed as its callers make them: the
 * request and response examples of its documents (paths, bodies, status codes, field names, lowercase
 * enum names, ISO 8601 times) and the Backend V2 client's pattern. Where the documents and the
 * reference code disagree, the code's behaviour is expected unless it lost data; where this service
 * deliberately differs (422 is 400 here, 202 is 200 as in the code), the test says so.
 */

/** The API guide's session example: a UUID id, game_info and metadata objects, the counters of its detail example. */
function guideSession(sessionId: string, extra: Json = {}): Json {
  return {
    session_id: sessionId,
    filename: "game_text_v1.xlsx",
    file_path: "/uploads/2025/09/30/game_text_v1.xlsx",
    status: "processing",
    game_info: { game_name: "Fantasy Quest", source_language: "zh", target_language: "en", game_type: "rpg" },
    llm_provider: "openai",
    metadata: { user_id: "user_001", project_id: "proj_001" },
    total_tasks: 1000,
    completed_tasks: 350,
    failed_tasks: 5,
    processing_tasks: 10,
    ...extra,
  };
}

/** A TaskData item of the guide: TASK_XXXX ids, a BATCH_{lang}_{TYPE}_{num} batch, 0-based rows. */
function guideTask(sessionId: string, n: number, extra: Json = {}): Json {
  return {
    task_id: `TASK_${String(n).padStart(4, "0")}`,
    session_id: sessionId,
    batch_id: "BATCH_EN_NORMAL_001",
    sheet_name: "Sheet1",
    row_index: n - 1,
    column_name: "B",
    source_text: `你好，勇者 ${n}`,
    status: "pending",
    ...extra,
  };
}

describeEachDialect("original design, replayed", (target) => {
  let server: TestServer;
  let base: string;
  const call = (method: string, path: string, body?: unknown) => restCall(base, method, path, body);

  beforeAll(async () => {
    server = await startTestServer({ PERSISTENCE_SQL_URL: target().url, PERSISTENCE_CLEANUP_INTERVAL_MS: "0" });
    base = server.url;
  });
  afterAll(async () => {
    await server?.close();
  });

  it("batch writes: 200 (as the code answered, not the 202 of the docs) {status: accepted, count, timestamp}", async () => {
    const id = randomUUID();
    const sessions = await call("POST", "/api/v1/translation/sessions/batch", { sessions: [guideSession(id)] });
    expect(sessions.status).toBe(200);
    expect(sessions.json).toMatchObject({ status: "accepted", count: 1 });
    expect(sessions.json.timestamp).toMatch(RFC3339_UTC);
    const tasks = await call("POST", "/api/v1/translation/tasks/batch", { tasks: [1, 2, 3].map((n) => guideTask(id, n)) });
    expect(tasks.status).toBe(200);
    expect(tasks.json).toMatchObject({ status: "accepted", count: 3 });
  });

  it("flush without a body: {status: flushed, sessions_written, tasks_written, duration_ms}, then empty", async () => {
    const id = randomUUID();
    await call("POST", "/api/v1/translation/sessions/batch", { sessions: [guideSession(id)], durability: "accepted" });
    await call("POST", "/api/v1/translation/tasks/batch", { tasks: [guideTask(id, 1)], durability: "accepted" });
    const flushed = await call("POST", "/api/v1/translation/flush");
    expect(flushed.status).toBe(200);
    expect(flushed.json).toMatchObject({ status: "flushed", sessions_written: expect.any(Number), tasks_written: expect.any(Number) });
    expect(flushed.json.sessions_written).toBeGreaterThanOrEqual(1);
    expect(Number.isInteger(flushed.json.duration_ms)).toBe(true);
    const again = await call("POST", "/api/v1/translation/flush");
    expect(again.json).toMatchObject({ status: "empty", sessions_written: 0, tasks_written: 0 });
  });

  it("GET a session: every documented field, the detail example's figures (pending 635, progress 35.0)", async () => {
    const id = randomUUID();
    await call("POST", "/api/v1/translation/sessions/batch", { sessions: [guideSession(id)], durability: "committed" });
    const { status, json } = await call("GET", `/api/v1/translation/sessions/${id}`);
    expect(status).toBe(200);
    for (const field of [
      "session_id", "filename", "file_path", "status", "game_info", "llm_provider", "metadata", "total_tasks", "completed_tasks",
      "failed_tasks", "processing_tasks", "pending_tasks", "progress", "created_at", "updated_at", "estimated_completion",
    ]) {
      expect(json).toHaveProperty(field);
    }
    expect(json).toMatchObject({
      session_id: id,
      status: "processing",
      game_info: { game_name: "Fantasy Quest", source_language: "zh", target_language: "en", game_type: "rpg" },
      metadata: { user_id: "user_001", project_id: "proj_001" },
      total_tasks: 1000,
      completed_tasks: 350,
      failed_tasks: 5,
      processing_tasks: 10,
      pending_tasks: 635,
      progress: 35,
    });
    expect(json.created_at).toMatch(RFC3339_UTC);
    expect(json.updated_at).toMatch(RFC3339_UTC);
    expect(json.estimated_completion).toMatch(RFC3339_UTC);

    const missing = await call("GET", `/api/v1/translation/sessions/${randomUUID()}`);
    expect(missing.status).toBe(404);
    expect(missing.json.detail).toMatch(/not found/);
  });

  it("lists sessions {total, page, page_size, total_pages = ceil(total / page_size), items} with the documented filters", async () => {
    const provider = `prov-${randomUUID().slice(0, 8)}`;
    const ids = [randomUUID(), randomUUID(), randomUUID()];
    await call("POST", "/api/v1/translation/sessions/batch", {
      sessions: ids.map((id, i) => guideSession(id, { llm_provider: provider, status: i === 0 ? "completed" : "processing", created_at: `2025-09-0${i + 1}T08:00:00Z` })),
      durability: "committed",
    });
    const page = await call("GET", `/api/v1/translation/sessions?llm_provider=${provider}&page=1&page_size=2&sort_by=created_at&order=asc`);
    expect(page.status).toBe(200);
    expect(page.json).toMatchObject({ total: 3, page: 1, page_size: 2, total_pages: 2 });
    expect(page.json.items.map((s: Json) => s.session_id)).toEqual(ids.slice(0, 2));
    const filtered = await call("GET", `/api/v1/translation/sessions?llm_provider=${provider}&status=processing&from_date=2025-09-02T00:00:00&to_date=2025-09-03`);
    expect(filtered.json.items.map((s: Json) => s.session_id)).toEqual([ids[1]]);
    // The original's le=100 and ge=1 are 422s there; invalid input is a 400 here, naming the field.
    const tooBig = await call("GET", "/api/v1/translation/sessions?page_size=101");
    expect(tooBig.status).toBe(400);
    expect(tooBig.json.errors).toEqual([{ field: "page_size", message: "must be between 1 and 100" }]);
    expect((await call("GET", "/api/v1/translation/sessions?page=0")).json.errors).toEqual([{ field: "page", message: "must be 1 or more" }]);
  });

  it("lists a session's tasks with session_id on top and every column on each item, null when empty", async () => {
    const id = randomUUID();
    await call("POST", "/api/v1/translation/sessions/batch", { sessions: [guideSession(id)] });
    await call("POST", "/api/v1/translation/tasks/batch", {
      tasks: [guideTask(id, 1, { status: "completed", target_text: "Hello, hero 1", confidence: 0.95 }), guideTask(id, 2), guideTask(id, 3, { sheet_name: "Sheet2" })],
      durability: "committed",
    });
    const listed = await call("GET", `/api/v1/translation/sessions/${id}/tasks?sheet_name=Sheet1&page=1&page_size=20`);
    expect(listed.status).toBe(200);
    expect(listed.json).toMatchObject({ session_id: id, total: 2, page: 1, page_size: 20, total_pages: 1 });
    const [done, waiting] = listed.json.items as Json[];
    for (const field of [
      "task_id", "batch_id", "sheet_name", "row_index", "column_name", "source_text", "target_text", "status", "error_message", "retry_count",
      "confidence", "created_at", "updated_at",
    ]) {
      expect(waiting).toHaveProperty(field);
    }
    expect(done).toMatchObject({ task_id: "TASK_0001", status: "completed", target_text: "Hello, hero 1", confidence: 0.95, row_index: 0 });
    expect(waiting).toMatchObject({ task_id: "TASK_0002", status: "pending", target_text: null, error_message: null, confidence: null, retry_count: 0 });
    // Row order, as the code listed them (row_index ASC), and the code's sort_by/order on tasks.
    const byRow = await call("GET", `/api/v1/translation/tasks?session_id=${id}&sort_by=row_index&order=desc`);
    expect(byRow.json.items.map((t: Json) => t.row_index)).toEqual([2, 1, 0]);
  });

  it("GET a task: every column (context, start_time, end_time, duration_ms), times as ISO 8601", async () => {
    const id = randomUUID();
    await call("POST", "/api/v1/translation/sessions/batch", { sessions: [guideSession(id)] });
    // The original wrote datetimes as 'YYYY-MM-DD HH:MM:SS'; such times are read as UTC.
    await call("POST", "/api/v1/translation/tasks/batch", {
      tasks: [guideTask(id, 7, { context: "NPC greeting", status: "completed", start_time: "2025-09-30 10:00:00", end_time: "2025-09-30T10:00:05Z", duration_ms: 5000 })],
      durability: "committed",
    });
    const { status, json } = await call("GET", `/api/v1/translation/tasks/TASK_0007?session_id=${id}`);
    expect(status).toBe(200);
    expect(json).toMatchObject({ context: "NPC greeting", start_time: "2025-09-30T10:00:00Z", end_time: "2025-09-30T10:00:05Z", duration_ms: 5000, status: "completed" });
    const missing = await call("GET", `/api/v1/translation/tasks/TASK_9999?session_id=${id}`);
    expect(missing.status).toBe(404);
    expect(missing.json.detail).toMatch(/not found/);
  });

  it("recovery: incomplete sessions {count, sessions} newest first, restore {session_id, session, tasks_count, tasks, restored_at}", async () => {
    const id = randomUUID();
    const finished = randomUUID();
    await call("POST", "/api/v1/translation/sessions/batch", {
      sessions: [guideSession(id, { status: "pending", created_at: "2099-01-01T00:00:00Z" }), guideSession(finished, { status: "completed", created_at: "2099-01-02T00:00:00Z" })],
      durability: "committed",
    });
    await call("POST", "/api/v1/translation/tasks/batch", {
      tasks: [guideTask(id, 1, { status: "completed" }), guideTask(id, 2, { status: "failed" }), guideTask(id, 3, { status: "processing" }), guideTask(id, 4)],
      durability: "committed",
    });
    const incomplete = await call("GET", "/api/v1/translation/recovery/incomplete-sessions");
    expect(incomplete.status).toBe(200);
    expect(incomplete.json.count).toBe(incomplete.json.sessions.length);
    const ids = incomplete.json.sessions.map((s: Json) => s.session_id);
    expect(ids[0]).toBe(id);
    expect(ids).not.toContain(finished);
    for (const field of ["session_id", "filename", "status", "total_tasks", "completed_tasks", "pending_tasks", "failed_tasks", "created_at", "updated_at"]) {
      expect(incomplete.json.sessions[0]).toHaveProperty(field);
    }

    const restored = await call("POST", `/api/v1/translation/recovery/restore/${id}`);
    expect(restored.status).toBe(200);
    expect(Object.keys(restored.json).sort()).toEqual(["restored_at", "session", "session_id", "tasks", "tasks_count"]);
    expect(restored.json).toMatchObject({ session_id: id, tasks_count: 2, session: { session_id: id, filename: "game_text_v1.xlsx" } });
    expect(restored.json.tasks.map((t: Json) => [t.task_id, t.status])).toEqual([
      ["TASK_0003", "processing"],
      ["TASK_0004", "pending"],
    ]);
    expect(restored.json.restored_at).toMatch(RFC3339_UTC);
    expect((await call("POST", `/api/v1/translation/recovery/restore/${randomUUID()}`)).status).toBe(404);
  });

  it("DELETE a session: {status: deleted, session_id, deleted_tasks, timestamp}, then 404", async () => {
    const id = randomUUID();
    await call("POST", "/api/v1/translation/sessions/batch", { sessions: [guideSession(id, { status: "completed" })] });
    await call("POST", "/api/v1/translation/tasks/batch", { tasks: [guideTask(id, 1), guideTask(id, 2)], durability: "committed" });
    const deleted = await call("DELETE", `/api/v1/translation/sessions/${id}`);
    expect(deleted.status).toBe(200);
    expect(deleted.json).toEqual({ status: "deleted", session_id: id, deleted_tasks: 2, hidden_tasks: 0, timestamp: expect.stringMatching(RFC3339_UTC) });
    expect((await call("GET", `/api/v1/translation/sessions/${id}`)).status).toBe(404);
    expect((await call("DELETE", `/api/v1/translation/sessions/${id}`)).status).toBe(404);
  });

  it("cleanup with the code's query parameters and the docs' body: {status: completed, deleted_sessions, deleted_tasks, dry_run, timestamp}", async () => {
    const old = randomUUID();
    await call("POST", "/api/v1/translation/sessions/batch", {
      sessions: [guideSession(old, { status: "completed", created_at: "2020-01-01T00:00:00Z", updated_at: "2020-01-01T00:00:00Z" })],
      durability: "committed",
    });
    await call("POST", "/api/v1/translation/tasks/batch", { tasks: [guideTask(old, 1, { updated_at: "2020-01-01T00:00:00Z" })], durability: "committed" });
    const dry = await call("POST", "/api/v1/translation/sessions/cleanup?completed_days=90&failed_days=30&dry_run=true");
    expect(dry.status).toBe(200);
    expect(dry.json).toMatchObject({ status: "completed", dry_run: true });
    expect(dry.json.deleted_sessions).toBeGreaterThanOrEqual(1);
    expect(dry.json.timestamp).toMatch(RFC3339_UTC);
    expect((await call("GET", `/api/v1/translation/sessions/${old}`)).status).toBe(200);
    const real = await call("POST", "/api/v1/translation/sessions/cleanup", { completed_days: 90, failed_days: 30, dry_run: false });
    expect(real.json).toMatchObject({ status: "completed", dry_run: false });
    expect(real.json.deleted_tasks).toBeGreaterThanOrEqual(1);
    expect((await call("GET", `/api/v1/translation/sessions/${old}`)).status).toBe(404);
  });

  it("stats: the documented blocks sessions, tasks, performance and storage figures", async () => {
    const { status, json } = await call("GET", "/api/v1/translation/stats");
    expect(status).toBe(200);
    for (const block of ["sessions", "tasks"]) {
      expect(Object.keys(json[block]).sort()).toEqual(["cancelled", "completed", "failed", "pending", "processing", "total"]);
      const { total, ...byStatus } = json[block] as Record<string, number>;
      expect(total).toBe(Object.values(byStatus).reduce((a, b) => a + b, 0));
    }
    expect(json.sessions.total).toBeGreaterThan(0);
    expect(Object.keys(json.performance).sort()).toEqual(["average_session_time", "average_task_time", "success_rate"]);
    expect(json.performance.success_rate).toBeGreaterThanOrEqual(0);
    expect(json.performance.success_rate).toBeLessThanOrEqual(100);
    // Python callers read stats["storage"]["database_size_mb"].
    expect(json.storage).toEqual({ database_size_mb: expect.any(Number), sessions_table_rows: expect.any(Number), tasks_table_rows: expect.any(Number) });
    // v1's stats path answers as today's.
    expect((await call("GET", "/api/v1/persistence/stats")).json.sessions.total).toBe(json.sessions.total);
  });

  it("/health and GET /: the original's fields", async () => {
    const health = await call("GET", "/health");
    expect(health.status).toBe(200);
    expect(health.json).toMatchObject({ status: "healthy", database: "healthy", version: expect.any(String), uptime_seconds: expect.any(Number) });
    for (const field of ["sessions_count", "tasks_count", "total_count", "capacity", "usage_percent", "last_flush"]) expect(health.json.buffer).toHaveProperty(field);
    const info = await call("GET", "/");
    expect(info.json).toMatchObject({ service: "Persistence Service", version: expect.any(String), status: "running", docs: "/docs", redoc: "/redoc", health: "/health" });
    for (const page of ["/docs", "/redoc", "/openapi.json"]) expect((await fetch(`${base}${page}`)).status).toBe(200);
  });

  it("errors: the documented {detail, errors: [{field, message}]} shape, for validation errors with a 400 (not FastAPI's 422)", async () => {
    const res = await call("POST", "/api/v1/translation/sessions/batch", { sessions: [{ filename: "a.xlsx", status: "processing" }] });
    expect(res.status).toBe(400);
    expect(res.json.detail).toEqual(expect.any(String));
    expect(res.json.errors).toEqual([{ field: "sessions[0].session_id", message: "is required" }]);
    const badStatus = await call("POST", "/api/v1/translation/tasks/batch", { tasks: [guideTask(randomUUID(), 1, { status: "done" })] });
    expect(badStatus.json.errors).toEqual([{ field: "tasks[0].status", message: "must be one of pending, processing, completed, failed, cancelled" }]);
  });

  it("the upsert's behaviour: a re-queued task with error_message null loses its error; counters as declared", async () => {
    const id = randomUUID();
    await call("POST", "/api/v1/translation/sessions/batch", { sessions: [guideSession(id)] });
    await call("POST", "/api/v1/translation/tasks/batch", { tasks: [guideTask(id, 1, { status: "failed", error_message: "rate limited", retry_count: 1 })], durability: "committed" });
    await call("POST", "/api/v1/translation/tasks/batch", {
      tasks: [guideTask(id, 1, { status: "pending", error_message: null, target_text: null, confidence: null, retry_count: 1 })],
      durability: "committed",
    });
    const task = (await call("GET", `/api/v1/translation/tasks/TASK_0001?session_id=${id}`)).json;
    expect(task).toMatchObject({ status: "pending", error_message: null, retry_count: 1 });
    // One task stored, 1000 declared: the session shows what the client declared.
    const session = (await call("GET", `/api/v1/translation/sessions/${id}`)).json;
    expect(session).toMatchObject({ total_tasks: 1000, completed_tasks: 350, stored_tasks: { total: 1 } });
  });

  it("the superseded v1 paths take the v1 quick start's calls", async () => {
    const id = randomUUID();
    expect((await call("POST", "/api/v1/persistence/sessions/batch", { sessions: [guideSession(id)] })).json).toMatchObject({ status: "accepted", count: 1 });
    expect((await call("POST", "/api/v1/persistence/tasks/batch", { tasks: [guideTask(id, 1)] })).json).toMatchObject({ status: "accepted", count: 1 });
    expect((await call("POST", "/api/v1/persistence/flush")).json.status).toBe("flushed");
    expect((await call("GET", `/api/v1/translation/sessions/${id}/tasks`)).json.total).toBe(1);
  });
});

/** The Backend V2 spreadsheet: `total` cells, of which the workers finish `completed` and fail `failed` before Stop. */
const SHEET = { total: 1000, completed: 350, failed: 10 } as const;

describeEachDialect("the Backend V2 client pattern", (target) => {
  let server: TestServer | undefined;
  /** A service process of its own, stopped and started again as the translation backend's host would be. */
  const start = async () => {
    server = await startTestServer({ PERSISTENCE_SQL_URL: target().url, PERSISTENCE_FLUSH_INTERVAL_MS: "60000" });
    return server.url;
  };
  afterEach(async () => {
    await server?.close();
    server = undefined;
  });

  it("over plain HTTP: batches of 100 within 2 s, flush on Stop, recovery at the next start, then completion", async () => {
    const sessionId = randomUUID();
    let client = new BackendV2Client(await start());
    await client.persistSession({ ...guideSession(sessionId), completed_tasks: undefined, failed_tasks: undefined, processing_tasks: undefined, total_tasks: SHEET.total });
    const cells = Array.from({ length: SHEET.total }, (_, i) => guideTask(sessionId, i + 1));
    await client.persistTasks(cells);
    // The workers finish 350 cells and fail 10; only changed cells are sent again.
    const changed = cells.slice(0, SHEET.completed + SHEET.failed).map((cell, i) =>
      i < SHEET.completed ? { ...cell, status: "completed", target_text: `Hello, hero ${i + 1}`, confidence: 0.9 } : { ...cell, status: "failed", error_message: "timeout", retry_count: 1 },
    );
    await client.persistTasks(changed);
    const flushed = await client.flushAll(); // the user pressed Stop
    expect(["flushed", "empty"]).toContain(flushed.status);
    expect(client.warnings).toEqual([]);
    const taskBatches = client.sent.filter((b) => b.path.endsWith("/tasks/batch"));
    expect(taskBatches.map((b) => b.records)).toEqual([...Array(13).fill(100), 60]);
    expect(client.sent.every((b) => b.status === 200 && b.ms < TIMEOUTS.write)).toBe(true);

    const before = await client.querySession(sessionId);
    expect(before).toMatchObject({ total_tasks: 1000, completed_tasks: 350, failed_tasks: 10, progress: 35, stored_tasks: { total: 1000 } });

    // The host restarts: a new service instance, a new client, recovery before anything else.
    await server!.close();
    client = new BackendV2Client(await start());
    const incomplete = await client.getIncompleteSessions();
    expect(incomplete.map((s) => s.session_id)).toContain(sessionId);
    const memory = new Map<string, { filename: string; tasks: Map<string, Json> }>();
    for (const listed of incomplete) {
      const data = await client.restoreSession(listed.session_id as string);
      memory.set(data.session.session_id as string, { filename: data.session.filename as string, tasks: new Map((data.tasks as Json[]).map((t) => [t.task_id as string, t])) });
    }
    const resumed = memory.get(sessionId)!;
    expect(resumed.filename).toBe("game_text_v1.xlsx");
    expect(resumed.tasks.size).toBe(SHEET.total - SHEET.completed - SHEET.failed);
    expect([...resumed.tasks.values()].every((t) => t.status === "pending")).toBe(true);

    // The worker pool resumes the unfinished cells and finishes them; the session completes.
    await client.persistTasks([...resumed.tasks.values()].map((t) => ({ ...t, status: "completed", target_text: "done", error_message: null })));
    await client.persistSession({ session_id: sessionId, status: "completed" });
    await client.flushAll();
    const after = await client.querySession(sessionId);
    expect(after).toMatchObject({ status: "completed", total_tasks: 1000, completed_tasks: 990, failed_tasks: 10, pending_tasks: 0, progress: 99 });
    expect((await client.getIncompleteSessions()).map((s) => s.session_id)).not.toContain(sessionId);
  });

  it("over plain HTTP: a batch the service cannot take in time is logged and dropped, as documented, and the client goes on", async () => {
    const client = new BackendV2Client(await start());
    const sessionId = randomUUID();
    await client.persistSession({ session_id: sessionId, filename: "a.xlsx", status: "processing", total_tasks: 100 });
    await client.flushAll();
    await server!.close();
    server = undefined;
    // The service is gone: the batch fails within the 2 s timeout and is dropped, no retry.
    await client.persistTasks(Array.from({ length: 100 }, (_, i) => guideTask(sessionId, i + 1)));
    expect(client.warnings).toHaveLength(1);
    expect(client.sent.at(-1)).toMatchObject({ records: 100, status: 0 });
    expect(client.sent.at(-1)!.ms).toBeLessThan(TIMEOUTS.write + 500);
    expect(await client.getIncompleteSessions()).toEqual([]);
  });

  it("through the SDK: the batcher in batches of 100, flushAll on Stop, recoverIncompleteSessions at start", async () => {
    const sessionId = randomUUID();
    let url = await start();
    let client = createPersistenceClient({ baseUrl: url, timeoutMs: TIMEOUTS.write, httpVersion: "1.1" });
    const batcher = createTranslationBatcher(client, { maxBatchRecords: 100 });
    batcher.persistSession({ sessionId, filename: "game_text_v1.xlsx", status: SessionStatus.PROCESSING, totalTasks: SHEET.total });
    const cells = Array.from({ length: SHEET.total }, (_, i) => ({
      sessionId,
      taskId: `TASK_${String(i + 1).padStart(4, "0")}`,
      sheetName: "Sheet1",
      rowIndex: i,
      columnName: "B",
      sourceText: `你好 ${i + 1}`,
      status: i < SHEET.completed ? TaskStatus.COMPLETED : i < SHEET.completed + SHEET.failed ? TaskStatus.FAILED : TaskStatus.PENDING,
    }));
    expect(batcher.persistTasks(cells)).toBe(true);
    const flushed = await batcher.flushAll({ timeoutMs: TIMEOUTS.flush });
    // "empty" when the service's own buffer limit flushed everything first.
    expect(["flushed", "empty"]).toContain(flushed.status);
    const stats = batcher.stats();
    expect(stats).toMatchObject({ sent: SHEET.total + 1, dropped: 0, failedRequests: 0 });
    // 1,000 tasks and one session in requests of at most 100 records each.
    expect(stats.requests).toBeGreaterThanOrEqual(11);
    await batcher.close();
    client.close();

    await server!.close();
    url = await start();
    client = createPersistenceClient({ baseUrl: url, timeoutMs: TIMEOUTS.restore, httpVersion: "1.1" });
    const resumed = new Map<string, { declared: number | undefined; tasks: number }>();
    const report = await recoverIncompleteSessions(client, (session, tasks) => {
      resumed.set(session.sessionId, { declared: session.totalTasks, tasks: tasks.length });
    });
    expect(report.failed).toEqual([]);
    expect(resumed.get(sessionId)).toEqual({ declared: SHEET.total, tasks: SHEET.total - SHEET.completed - SHEET.failed });
    const session = (await client.translation.getSession({ sessionId })).session!;
    expect(session).toMatchObject({ totalTasks: 1000, completedTasks: 350, failedTasks: 10, progress: 35 });
    client.close();
  });
});
