import http2 from "node:http2";
import { gunzipSync, gzipSync } from "node:zlib";
import { restCall, restSend, RFC3339_UTC } from "../support/rest-call";
import { describeEachDialect } from "../support/sql-targets";
import { startTestServer, type TestServer } from "../support/test-server";

/** JSON as the REST paths write it. */
type Json = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

/** Original-style records: snake_case, short enum names, RFC 3339 times, a free-form game_info object. */
function sessionRecord(id: string, extra: Json = {}): Json {
  return {
    session_id: id,
    filename: `${id}.xlsx`,
    file_path: `/uploads/${id}.xlsx`,
    status: "processing",
    game_info: { game_name: "Dragon Quest", source_language: "en", target_language: "ja", game_type: "rpg" },
    llm_provider: "openai",
    metadata: { uploaded_by: "alice", tags: ["beta"] },
    total_tasks: 3,
    created_at: "2025-09-30T10:00:00Z",
    ...extra,
  };
}

function taskRecord(sessionId: string, n: number, extra: Json = {}): Json {
  return {
    task_id: `TASK_${String(n).padStart(4, "0")}`,
    session_id: sessionId,
    batch_id: "BATCH_TR_NORMAL_001",
    sheet_name: "Dialogue",
    row_index: 10 + n,
    column_name: "Text",
    source_text: `Hello, adventurer #${n}!`,
    status: "pending",
    ...extra,
  };
}

/** A GET over h2c (HTTP/2 with prior knowledge). */
function h2get(base: string, path: string, headers: Record<string, string> = {}) {
  return new Promise<{ status: number | undefined; headers: http2.IncomingHttpHeaders; body: Buffer }>((resolve, reject) => {
    const session = http2.connect(base);
    session.on("error", reject);
    const stream = session.request({ ":path": path, ...headers });
    const chunks: Buffer[] = [];
    stream.on("response", (h) => {
      stream.on("data", (c: Buffer) => chunks.push(c));
      stream.on("end", () => {
        session.close();
        resolve({ status: h[":status"], headers: h, body: Buffer.concat(chunks) });
      });
    });
    stream.on("error", reject);
  });
}

describeEachDialect("REST paths", (target, dialect) => {
  let server: TestServer;
  let base: string;
  /** A REST call with a JSON body (when given); returns status, headers and parsed body. */
  const call = (method: string, path: string, body?: unknown, headers: Record<string, string> = {}) => restCall(base, method, path, body, headers);

  beforeAll(async () => {
    server = await startTestServer({ PERSISTENCE_SQL_URL: target().url, PERSISTENCE_FLUSH_INTERVAL_MS: "60000" });
    base = server.url;
  });
  afterAll(async () => {
    await server?.close();
  });

  it("accepts original-style batches and answers {status, count, durability, timestamp}", async () => {
    const sessions = await call("POST", "/api/v1/translation/sessions/batch", { sessions: [sessionRecord("rest-a")] });
    expect(sessions.status).toBe(200);
    expect(sessions.headers.get("content-type")).toBe("application/json");
    expect(Object.keys(sessions.json).sort()).toEqual(["count", "durability", "status", "timestamp"]);
    expect(sessions.json.status).toBe("accepted");
    expect(sessions.json.count).toBe(1);
    expect(sessions.json.durability).toBe("logged");
    expect(sessions.json.timestamp).toMatch(RFC3339_UTC);

    const tasks = await call("POST", "/api/v1/translation/tasks/batch", {
      tasks: [taskRecord("rest-a", 1), taskRecord("rest-a", 2), taskRecord("rest-a", 3, { sheet_name: "Items", status: "completed", confidence: 0.9 })],
      durability: "committed",
    });
    expect(tasks.json).toMatchObject({ status: "accepted", count: 3, durability: "committed" });
  });

  it("GET /api/v1/translation/sessions/{session_id} returns the session view, field by field", async () => {
    const { status, json } = await call("GET", "/api/v1/translation/sessions/rest-a");
    expect(status).toBe(200);
    expect(json.session_id).toBe("rest-a");
    expect(json.filename).toBe("rest-a.xlsx");
    expect(json.file_path).toBe("/uploads/rest-a.xlsx");
    expect(json.status).toBe("processing");
    expect(json.game_info).toEqual({ game_name: "Dragon Quest", source_language: "en", target_language: "ja", game_type: "rpg" });
    expect(json.llm_provider).toBe("openai");
    expect(json.metadata).toEqual({ uploaded_by: "alice", tags: ["beta"] });
    // Counters come from the stored tasks: 3 tasks, one completed.
    expect(json.total_tasks).toBe(3);
    expect(json.completed_tasks).toBe(1);
    expect(json.failed_tasks).toBe(0);
    expect(json.processing_tasks).toBe(0);
    expect(json.pending_tasks).toBe(2);
    expect(json.progress).toBeCloseTo(100 / 3, 5);
    expect(json.created_at).toBe("2025-09-30T10:00:00Z");
    expect(json.updated_at).toMatch(RFC3339_UTC);
    expect(json.stored_tasks).toEqual({ total: 3, pending: 2, processing: 0, completed: 1, failed: 0, cancelled: 0 });
    // Every field is there, null when empty; the write-side clear_fields is not.
    expect(json).toHaveProperty("estimated_completion");
    expect(json).not.toHaveProperty("clear_fields");
  });

  it("views carry every stored field, null for the empty ones", async () => {
    await call("POST", "/api/v1/translation/sessions/batch", { sessions: [{ session_id: "rest-bare", filename: "bare.xlsx" }], durability: "committed" });
    await call("POST", "/api/v1/translation/tasks/batch", { tasks: [{ session_id: "rest-bare", task_id: "T1" }], durability: "committed" });
    const session = (await call("GET", "/api/v1/translation/sessions/rest-bare")).json;
    expect(session).toMatchObject({ session_id: "rest-bare", filename: "bare.xlsx", file_path: null, game_info: null, llm_provider: null, metadata: null });
    expect(session.estimated_completion).toBeNull();
    const task = (await call("GET", "/api/v1/translation/tasks/T1?session_id=rest-bare")).json;
    for (const empty of ["batch_id", "source_text", "target_text", "context", "confidence", "error_message", "start_time", "end_time", "duration_ms"]) {
      expect(task).toHaveProperty(empty, null);
    }
    expect(task).toMatchObject({ task_id: "T1", status: "pending", retry_count: 0, row_index: 0 });
    expect(task).not.toHaveProperty("clear_fields");
    const listed = (await call("GET", "/api/v1/translation/sessions/rest-bare/tasks")).json;
    expect(listed.session_id).toBe("rest-bare");
    expect(listed.items[0]).toHaveProperty("target_text", null);
    expect((await call("DELETE", "/api/v1/translation/sessions/rest-bare")).status).toBe(200);
  });

  it("shows counters as the client declared them, the stored counts beside them, progress against the declared total", async () => {
    const id = "rest-declared";
    await call("POST", "/api/v1/translation/sessions/batch", { sessions: [sessionRecord(id, { total_tasks: 1000 })], durability: "committed" });
    // The first of ten batches: 100 tasks, 35 of them completed and 5 failed.
    const tasks = Array.from({ length: 100 }, (_, i) => taskRecord(id, i + 1, { status: i < 35 ? "completed" : i < 40 ? "failed" : "pending" }));
    await call("POST", "/api/v1/translation/tasks/batch", { tasks, durability: "committed" });
    const session = (await call("GET", `/api/v1/translation/sessions/${id}`)).json;
    expect(session).toMatchObject({ total_tasks: 1000, completed_tasks: 35, failed_tasks: 5, processing_tasks: 0, pending_tasks: 960 });
    expect(session.progress).toBeCloseTo(3.5, 9);
    expect(session.stored_tasks).toEqual({ total: 100, pending: 60, processing: 0, completed: 35, failed: 5, cancelled: 0 });
    // Declared counters win over the stored counts, a declared 0 included.
    await call("POST", "/api/v1/translation/sessions/batch", { sessions: [{ session_id: id, completed_tasks: 350, failed_tasks: 0 }], durability: "committed" });
    const declared = (await call("GET", `/api/v1/translation/sessions/${id}`)).json;
    expect(declared).toMatchObject({ total_tasks: 1000, completed_tasks: 350, failed_tasks: 0, pending_tasks: 650, progress: 35 });
    expect(declared.stored_tasks.completed).toBe(35);
    const incomplete = (await call("GET", "/api/v1/translation/recovery/incomplete-sessions")).json;
    expect(incomplete.sessions.find((s: Json) => s.session_id === id)).toMatchObject({ total_tasks: 1000, completed_tasks: 350 });
    expect((await call("DELETE", `/api/v1/translation/sessions/${id}`)).json.deleted_tasks).toBe(100);
  });

  it("GET /api/v1/translation/sessions/{session_id}/tasks filters, orders and pages", async () => {
    const all = await call("GET", "/api/v1/translation/sessions/rest-a/tasks?page_size=2");
    expect(all.status).toBe(200);
    expect(all.json).toMatchObject({ total: 3, page: 1, page_size: 2, total_pages: 2 });
    expect(all.json.items.map((t: Json) => `${t.sheet_name}/${t.row_index}`)).toEqual(["Dialogue/11", "Dialogue/12"]);
    expect(all.json.next_page_token).not.toBe("");
    const next = await call("GET", `/api/v1/translation/sessions/rest-a/tasks?page_size=2&page_token=${encodeURIComponent(all.json.next_page_token)}`);
    expect(next.json.items.map((t: Json) => t.task_id)).toEqual(["TASK_0003"]);
    expect(next.json.next_page_token).toBe("");

    const task = all.json.items[0];
    expect(task).toMatchObject({
      task_id: "TASK_0001",
      session_id: "rest-a",
      batch_id: "BATCH_TR_NORMAL_001",
      sheet_name: "Dialogue",
      row_index: 11,
      column_name: "Text",
      source_text: "Hello, adventurer #1!",
      status: "pending",
      retry_count: 0,
    });
    expect(task.created_at).toMatch(RFC3339_UTC);

    const filtered = await call("GET", "/api/v1/translation/sessions/rest-a/tasks?status=pending&status=completed&sheet_name=Items");
    expect(filtered.json.items.map((t: Json) => [t.task_id, t.status, t.confidence])).toEqual([["TASK_0003", "completed", 0.9]]);

    const missing = await call("GET", "/api/v1/translation/sessions/no-such-session/tasks");
    expect(missing.status).toBe(404);
    expect(missing.json).toMatchObject({ code: "not_found", message: 'session "no-such-session" not found', detail: 'session "no-such-session" not found' });
    expect(missing.json).not.toHaveProperty("errors");
  });

  it("GET /api/v1/translation/sessions lists with filters, sorting and both kinds of paging", async () => {
    await call("POST", "/api/v1/translation/sessions/batch", {
      sessions: [
        sessionRecord("rest-b", { status: "completed", created_at: "2025-10-01T10:00:00Z", updated_at: "2025-10-01T11:00:00Z", llm_provider: "anthropic" }),
        sessionRecord("rest-c", { status: "pending", created_at: "2025-10-02T10:00:00+02:00" }),
      ],
      durability: "committed",
    });
    const page = await call("GET", "/api/v1/translation/sessions?page=1&page_size=2&sort_by=created_at&sort_order=asc");
    expect(page.json).toMatchObject({ total: 3, page: 1, page_size: 2, total_pages: 2 });
    expect(page.json.items.map((s: Json) => s.session_id)).toEqual(["rest-a", "rest-b"]);
    const second = await call("GET", "/api/v1/translation/sessions?page=2&page_size=2&sort_by=created_at&sort_order=asc");
    expect(second.json.items.map((s: Json) => [s.session_id, s.created_at])).toEqual([["rest-c", "2025-10-02T08:00:00Z"]]);

    const byStatus = await call("GET", "/api/v1/translation/sessions?status=completed&status=pending");
    expect(byStatus.json.items.map((s: Json) => s.session_id).sort()).toEqual(["rest-b", "rest-c"]);
    const byProvider = await call("GET", "/api/v1/translation/sessions?llm_provider=anthropic");
    expect(byProvider.json.items.map((s: Json) => s.session_id)).toEqual(["rest-b"]);
    const byDate = await call("GET", "/api/v1/translation/sessions?from_date=2025-10-01&to_date=2025-10-02T00:00:00Z");
    expect(byDate.json.items.map((s: Json) => s.session_id)).toEqual(["rest-b"]);
    const defaults = await call("GET", "/api/v1/translation/sessions");
    expect(defaults.json).toMatchObject({ page: 1, page_size: 20 });
    expect(defaults.json.items[0].session_id).toBe("rest-c");
  });

  it("GET /api/v1/translation/tasks/{task_id} finds a task, asks for session_id when the id is ambiguous", async () => {
    const one = await call("GET", "/api/v1/translation/tasks/TASK_0002");
    expect(one.status).toBe(200);
    expect(one.json).toMatchObject({ task_id: "TASK_0002", session_id: "rest-a", row_index: 12, status: "pending" });

    await call("POST", "/api/v1/translation/tasks/batch", { tasks: [taskRecord("rest-b", 2, { status: "failed", error_message: "timeout" })] });
    const ambiguous = await call("GET", "/api/v1/translation/tasks/TASK_0002");
    expect(ambiguous.status).toBe(409);
    expect(ambiguous.json.code).toBe("failed_precondition");
    expect(ambiguous.json.details[0]["@type"]).toBe("type.googleapis.com/google.rpc.PreconditionFailure");
    expect(JSON.stringify(ambiguous.json.details)).toContain("rest-b");
    const scoped = await call("GET", "/api/v1/translation/tasks/TASK_0002?session_id=rest-b");
    expect(scoped.json).toMatchObject({ session_id: "rest-b", status: "failed", error_message: "timeout" });
  });

  it("GET /api/v1/translation/tasks filters across sessions", async () => {
    const failed = await call("GET", "/api/v1/translation/tasks?status=failed");
    expect(failed.json).toMatchObject({ total: 1, page: 1, total_pages: 1 });
    expect(failed.json.items[0]).toMatchObject({ session_id: "rest-b", task_id: "TASK_0002" });
    const scoped = await call("GET", "/api/v1/translation/tasks?session_id=rest-a&sheet_name=Dialogue&batch_id=BATCH_TR_NORMAL_001");
    expect(scoped.json.items.map((t: Json) => t.task_id)).toEqual(["TASK_0001", "TASK_0002"]);
    const none = await call("GET", "/api/v1/translation/tasks?from_date=2100-01-01T00:00:00Z");
    expect(none.json).toMatchObject({ total: 0, items: [] });
  });

  it("POST /api/v1/translation/flush reports what it wrote", async () => {
    await call("POST", "/api/v1/translation/tasks/batch", { tasks: [taskRecord("rest-c", 1)], durability: "accepted" });
    const flushed = await call("POST", "/api/v1/translation/flush");
    expect(flushed.status).toBe(200);
    expect(flushed.json).toEqual({
      status: "flushed",
      sessions_written: 0,
      tasks_written: 1,
      sessions_dead_lettered: 0,
      tasks_dead_lettered: 0,
      duration_ms: expect.any(Number),
      flushed_instances: [expect.any(String)],
    });
    const empty = await call("POST", "/api/v1/translation/flush", {});
    expect(empty.json).toMatchObject({ status: "empty", sessions_written: 0, tasks_written: 0 });
  });

  it("PATCH /api/v1/translation/sessions/{session_id}/status applies at once", async () => {
    const res = await call("PATCH", "/api/v1/translation/sessions/rest-c/status", { status: "cancelled", reason: "user stopped" });
    expect(res.status).toBe(200);
    expect(res.json.session).toMatchObject({ session_id: "rest-c", status: "cancelled" });
    expect((await call("GET", "/api/v1/translation/sessions/rest-c")).json.status).toBe("cancelled");
    const mismatch = await call("PATCH", "/api/v1/translation/sessions/rest-c/status", { session_id: "other", status: "failed" });
    expect(mismatch.status).toBe(400);
    expect(mismatch.json.details[0].field_violations[0].field).toBe("session_id");
  });

  it("recovery: incomplete sessions, restore, restore as a stream, status", async () => {
    const incomplete = await call("GET", "/api/v1/translation/recovery/incomplete-sessions");
    expect(incomplete.status).toBe(200);
    expect(incomplete.json.count).toBe(1);
    expect(incomplete.json.sessions.map((s: Json) => [s.session_id, s.status, s.pending_tasks])).toEqual([["rest-a", "processing", 2]]);

    const restored = await call("POST", "/api/v1/translation/recovery/restore/rest-a");
    expect(restored.status).toBe(200);
    expect(Object.keys(restored.json).sort()).toEqual(["restored_at", "session", "session_id", "tasks", "tasks_count"]);
    expect(restored.json).toMatchObject({ session_id: "rest-a", tasks_count: 2, session: { session_id: "rest-a", status: "processing" } });
    expect(restored.json.tasks.map((t: Json) => t.task_id)).toEqual(["TASK_0001", "TASK_0002"]);
    expect(restored.json.restored_at).toMatch(RFC3339_UTC);

    const stream = await fetch(`${base}/api/v1/translation/recovery/restore/rest-a/stream`, { method: "POST" });
    expect(stream.status).toBe(200);
    expect(stream.headers.get("content-type")).toBe("application/x-ndjson");
    const lines = (await stream.text()).trim().split("\n").map((l) => JSON.parse(l) as Json);
    expect(lines.length).toBeGreaterThanOrEqual(1);
    expect(lines[0]?.session).toMatchObject({ session_id: "rest-a" });
    expect(lines.flatMap((l) => l.tasks).map((t: Json) => t.task_id)).toEqual(["TASK_0001", "TASK_0002"]);
    const missing = await fetch(`${base}/api/v1/translation/recovery/restore/nobody/stream`, { method: "POST" });
    expect(missing.status).toBe(404);
    expect(((await missing.json()) as Json).code).toBe("not_found");

    const status = await call("GET", "/api/v1/translation/recovery/status");
    expect(status.json).toMatchObject({
      wal_replayed_records: 0,
      buffer_records: expect.any(Number),
      database_reachable: true,
      dead_letters: 0,
      incomplete_sessions: 1,
    });
  });

  it("GET /api/v1/translation/sessions/{session_id}/watch sends server-sent events", async () => {
    const abort = new AbortController();
    const res = await fetch(`${base}/api/v1/translation/sessions/rest-a/watch`, { headers: { accept: "text/event-stream" }, signal: abort.signal });
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toBe("text/event-stream");
    const reader = res.body!.getReader();
    let text = "";
    const nextEvent = async (): Promise<Json> => {
      while (!text.includes("\n\n")) {
        const { value, done } = await reader.read();
        if (done) throw new Error("stream ended");
        text += Buffer.from(value).toString();
      }
      const [event = "", ...rest] = text.split("\n\n");
      text = rest.join("\n\n");
      return JSON.parse(event.replace(/^data: /, "")) as Json;
    };
    const snapshot = await nextEvent();
    expect(snapshot.type).toBe("snapshot");
    expect(snapshot.session).toMatchObject({ session_id: "rest-a", status: "processing" });
    await call("POST", "/api/v1/translation/tasks/batch", { tasks: [taskRecord("rest-a", 1, { status: "completed" })], durability: "committed" });
    const change = await nextEvent();
    expect(change.session).toMatchObject({ session_id: "rest-a", completed_tasks: 2 });
    abort.abort();
  });

  it("GET /api/v1/translation/stats reports counts by short status name", async () => {
    const { json } = await call("GET", "/api/v1/translation/stats");
    expect(json.total_sessions).toBe(3);
    expect(json.total_tasks).toBe(5);
    expect(json.sessions_by_status).toEqual({ processing: 1, completed: 1, cancelled: 1 });
    expect(json.tasks_by_status).toMatchObject({ pending: 2, completed: 2, failed: 1 });
    // Per table under `tables` on REST (`storage` over Connect and gRPC): there `storage` is the original's block.
    expect(json.tables.map((t: Json) => t.table)).toEqual(expect.arrayContaining(["translation_sessions", "translation_tasks"]));
    expect(json.storage_totals).toBeUndefined();
    expect(json.write_path).toMatchObject({ dead_letters: 0 });
    // The original design's blocks beside them.
    expect(json.sessions).toEqual({ total: 3, pending: 0, processing: 1, completed: 1, failed: 0, cancelled: 1 });
    expect(json.tasks).toMatchObject({ total: 5, pending: 2, processing: 0, completed: 2, failed: 1 });
    expect(json.performance.success_rate).toBeCloseTo((2 / 3) * 100, 9);
    expect(json.performance).toEqual({ average_session_time: expect.any(Number), average_task_time: expect.any(Number), success_rate: expect.any(Number) });
    const rows = (table: string) => json.tables.find((t: Json) => t.table === table).rows;
    expect(json.storage).toEqual({
      database_size_mb: expect.any(Number),
      sessions_table_rows: rows("translation_sessions"),
      tasks_table_rows: rows("translation_tasks"),
    });
    expect(json.storage.database_size_mb).toBeGreaterThan(0);
  });

  it("POST /api/v1/translation/sessions/cleanup and DELETE /api/v1/translation/sessions/{session_id}", async () => {
    const dry = await call("POST", "/api/v1/translation/sessions/cleanup", { completed_days: 1, failed_days: 30, cancelled_days: 30, dry_run: true });
    expect(dry.status).toBe(200);
    expect(dry.json).toMatchObject({ status: "completed", dry_run: true, deleted_sessions: 1, sessions_by_status: { completed: 1, failed: 0, cancelled: 0 } });
    expect(dry.json.timestamp).toMatch(RFC3339_UTC);
    expect((await call("GET", "/api/v1/translation/sessions/rest-b")).status).toBe(200);

    const soft = await call("DELETE", "/api/v1/translation/sessions/rest-c?soft=true");
    expect(soft.json).toEqual({ status: "soft_deleted", session_id: "rest-c", deleted_tasks: 0, hidden_tasks: 1, timestamp: expect.stringMatching(RFC3339_UTC) });
    expect((await call("GET", "/api/v1/translation/sessions/rest-c")).status).toBe(404);
    const hard = await call("DELETE", "/api/v1/translation/sessions/rest-b");
    expect(hard.json).toEqual({ status: "deleted", session_id: "rest-b", deleted_tasks: 1, hidden_tasks: 0, timestamp: expect.stringMatching(RFC3339_UTC) });
    expect((await call("DELETE", "/api/v1/translation/sessions/rest-b")).status).toBe(404);
  });

  it("system paths: GET /, /health, /api/v1/system/metrics, /api/v1/system/config", async () => {
    const info = await call("GET", "/");
    expect(info.json).toMatchObject({ name: "persistence", backends: { sql: dialect === "mysql" ? "mysql" : "sqlite" } });
    expect(info.json.services).toContain("persistence.v1.TranslationService");
    expect(info.json.links).toMatchObject({ health: "/health", openapi: "/openapi.json", docs: "/docs", redoc: "/redoc" });
    expect(info.json).toMatchObject({ service: "Persistence Service", version: expect.any(String), status: "running", docs: "/docs", redoc: "/redoc", health: "/health" });

    const health = await call("GET", "/health");
    expect(health.status).toBe(200);
    expect(health.json).toMatchObject({ status: "healthy", backends: { sql: "up" }, buffer: { records: expect.any(Number), utilization: expect.any(Number) } });
    expect(health.json.uptime_seconds).toEqual(expect.any(Number));
    expect(health.json.backends_age_ms).toEqual(expect.any(Number));
    expect(health.json.database).toBe("healthy");
    // The original's buffer figures: one task record waits (the flush interval is a minute).
    await call("POST", "/api/v1/translation/tasks/batch", { tasks: [taskRecord("rest-a", 9)], durability: "accepted" });
    const buffered = (await call("GET", "/health")).json.buffer;
    expect(buffered).toMatchObject({ sessions_count: 0, tasks_count: 1, total_count: 1, total_buffered: 1, capacity: expect.any(Number) });
    expect(buffered.usage_percent).toBeCloseTo((100 * 1) / buffered.capacity, 2);
    expect(buffered.last_flush).toMatch(RFC3339_UTC);
    expect(buffered.last_flush_time).toBe(buffered.last_flush);

    const metrics = await call("GET", "/api/v1/system/metrics");
    const upserts = metrics.json.rpcs.find((r: Json) => r.method === "BatchUpsertTasks");
    expect(upserts).toMatchObject({ service: "persistence.v1.TranslationService", errors: 0, codes: { ok: expect.any(Number) } });
    expect(upserts.requests).toBeGreaterThanOrEqual(4);

    const config = await call("GET", "/api/v1/system/config");
    expect(config.json).toMatchObject({ wal: "on", flush_interval_ms: 60000, rest_ignore_unknown_fields: "off" });
    if (dialect === "mysql") expect(config.json.sql_url).toMatch(/^mysql:\/\//);
    expect(JSON.stringify(config.json)).not.toMatch(/password=|:[^@/]+@/);
  });

  it("answers the superseded v1 paths as the current ones", async () => {
    const sessions = await call("POST", "/api/v1/persistence/sessions/batch", { sessions: [sessionRecord("rest-v1")] });
    expect(sessions.status).toBe(200);
    expect(sessions.json).toMatchObject({ status: "accepted", count: 1, timestamp: expect.stringMatching(RFC3339_UTC) });
    const tasks = await call("POST", "/api/v1/persistence/tasks/batch", { tasks: [taskRecord("rest-v1", 1), taskRecord("rest-v1", 2)] });
    expect(tasks.json).toMatchObject({ status: "accepted", count: 2 });
    const flushed = await call("POST", "/api/v1/persistence/flush");
    expect(flushed.json).toMatchObject({ status: "flushed", sessions_written: 1 });
    expect(flushed.json.tasks_written).toBeGreaterThanOrEqual(2);
    expect((await call("GET", "/api/v1/translation/sessions/rest-v1/tasks")).json.total).toBe(2);
    const [v1, v2] = [(await call("GET", "/api/v1/persistence/stats")).json, (await call("GET", "/api/v1/translation/stats")).json];
    expect(Object.keys(v1).sort()).toEqual(Object.keys(v2).sort());
    expect(v1.sessions).toEqual(v2.sessions);
    expect(v1.tasks).toEqual(v2.tasks);
    const line = server.logs.find((l) => l.route === "POST /api/v1/persistence/flush");
    expect(line).toMatchObject({ method: "Flush", protocol: "rest", code: "ok" });
    expect((await call("DELETE", "/api/v1/translation/sessions/rest-v1")).json.deleted_tasks).toBe(2);
  });

  it("logs REST calls like any other call, with the route", async () => {
    await call("GET", "/api/v1/translation/stats", undefined, { "x-request-id": "rest-log-check" });
    const line = server.logs.find((l) => l.request_id === "rest-log-check");
    expect(line).toMatchObject({ method: "GetStats", protocol: "rest", route: "GET /api/v1/translation/stats", code: "ok" });
  });
});

describeEachDialect("REST query parameters on body routes", (target) => {
  let server: TestServer;
  let base: string;
  const OLD = "2020-01-01T00:00:00Z";
  let seq = 0;
  const call = (method: string, path: string, body?: unknown) => restCall(base, method, path, body);
  /** Sessions last updated years ago, one task each, in the database before the call returns. */
  const seedExpired = async (status: "completed" | "failed", count: number): Promise<string[]> => {
    const ids = Array.from({ length: count }, () => `expired-${status}-${++seq}`);
    const sessions = await call("POST", "/api/v1/translation/sessions/batch", {
      sessions: ids.map((id) => sessionRecord(id, { status, created_at: OLD, updated_at: OLD })),
      durability: "committed",
    });
    expect(sessions.status).toBe(200);
    const tasks = await call("POST", "/api/v1/translation/tasks/batch", { tasks: ids.map((id) => taskRecord(id, 1)), durability: "committed" });
    expect(tasks.status).toBe(200);
    return ids;
  };
  const stillThere = async (ids: string[]) => {
    const found: boolean[] = [];
    for (const id of ids) {
      const session = await call("GET", `/api/v1/translation/sessions/${id}`);
      const tasks = await call("GET", `/api/v1/translation/sessions/${id}/tasks`);
      found.push(session.status === 200 && tasks.json?.total === 1);
    }
    return found;
  };

  beforeAll(async () => {
    server = await startTestServer({ PERSISTENCE_SQL_URL: target().url, PERSISTENCE_CLEANUP_INTERVAL_MS: "0" });
    base = server.url;
  });
  afterAll(async () => {
    await server?.close();
  });

  it("cleanup with dry_run=true in the query deletes nothing and says it was a dry run; dry_run=false in the query deletes", async () => {
    // Whatever earlier cases left behind goes first, so the counts below are this case's own.
    expect((await call("POST", "/api/v1/translation/sessions/cleanup")).status).toBe(200);
    const completed = await seedExpired("completed", 2);
    const failed = await seedExpired("failed", 1);

    const dry = await call("POST", "/api/v1/translation/sessions/cleanup?completed_days=90&failed_days=30&dry_run=true");
    expect(dry.status).toBe(200);
    expect(dry.json).toMatchObject({ dry_run: true, deleted_sessions: 3, deleted_tasks: 3, sessions_by_status: { completed: 2, failed: 1 } });
    expect(await stillThere([...completed, ...failed])).toEqual([true, true, true]);

    // The query's day counts are honoured: failed sessions six years old are kept for 3000 days.
    const real = await call("POST", "/api/v1/translation/sessions/cleanup?completed_days=90&failed_days=3000&dry_run=false");
    expect(real.json).toMatchObject({ dry_run: false, deleted_sessions: 2, sessions_by_status: { completed: 2, failed: 0 } });
    expect(await stillThere([...completed, ...failed])).toEqual([false, false, true]);
  });

  it("cleanup takes its parameters from the body and the query together", async () => {
    const ids = await seedExpired("completed", 1);
    const res = await call("POST", "/api/v1/translation/sessions/cleanup?dry_run=true", { completed_days: 90, failed_days: 30 });
    expect(res.status).toBe(200);
    expect(res.json.dry_run).toBe(true);
    expect(await stillThere(ids)).toEqual([true]);
  });

  it.each([
    ["true", true],
    ["1", true],
    ["True", true],
    ["yes", true],
    ["", true],
    ["false", false],
    ["0", false],
    ["False", false],
    ["off", false],
  ])("cleanup reads dry_run=%s in the query as %s", async (text, dryRun) => {
    const ids = await seedExpired("completed", 1);
    const res = await call("POST", `/api/v1/translation/sessions/cleanup?dry_run=${text}`);
    expect(res.status).toBe(200);
    expect(res.json.dry_run).toBe(dryRun);
    expect(await stillThere(ids)).toEqual([dryRun]);
  });

  it.each([
    ["a misspelt parameter", "dryrun=true", "dryrun", "unknown query parameter"],
    ["a boolean it cannot read", "dry_run=maybe", "dry_run", "expected true or false"],
    ["a day count that is not a number", "dry_run=true&completed_days=ninety", "completed_days", "expected an integer"],
  ])("cleanup refuses %s with 400 naming it, and deletes nothing", async (_name, query, field, description) => {
    const ids = await seedExpired("completed", 1);
    const res = await call("POST", `/api/v1/translation/sessions/cleanup?${query}`);
    expect(res.status).toBe(400);
    expect(res.json.details[0].field_violations).toEqual([{ field, description }]);
    expect(await stillThere(ids)).toEqual([true]);
  });

  it("cleanup refuses a parameter given in both the body and the query, and deletes nothing", async () => {
    const ids = await seedExpired("completed", 1);
    for (const body of [{ dry_run: false }, { dryRun: true }]) {
      const res = await call("POST", "/api/v1/translation/sessions/cleanup?dry_run=true", body);
      expect(res.status).toBe(400);
      expect(res.json.details[0].field_violations).toEqual([{ field: "dry_run", description: "given in both the body and the query; give it once" }]);
    }
    expect(await stillThere(ids)).toEqual([true]);
  });

  it("binds query parameters on every body route: a batch's durability, a path field refused", async () => {
    const batch = await call("POST", "/api/v1/translation/sessions/batch?durability=committed", { sessions: [sessionRecord("query-durability")] });
    expect(batch.json).toMatchObject({ status: "accepted", count: 1, durability: "committed" });
    const unknown = await call("POST", "/api/v1/translation/sessions/batch?async=false", { sessions: [sessionRecord("query-unknown")] });
    expect(unknown.status).toBe(400);
    expect(unknown.json.details[0].field_violations).toEqual([{ field: "async", description: "unknown query parameter" }]);
    expect((await call("GET", "/api/v1/translation/sessions/query-unknown")).status).toBe(404);
    const path = await call("PATCH", "/api/v1/translation/sessions/query-durability/status?session_id=other", { status: "failed" });
    expect(path.status).toBe(400);
    expect(path.json.details[0].field_violations).toEqual([{ field: "session_id", description: "is set by the path" }]);
  });
});

describeEachDialect("REST listing parameters in the original spellings", (target) => {
  let server: TestServer;
  let base: string;
  const get = async (path: string) => {
    const res = await fetch(`${base}${path}`);
    return { status: res.status, json: (await res.json()) as Json };
  };
  const ids = (json: Json, key = "session_id") => json.items.map((item: Json) => item[key]);

  beforeAll(async () => {
    server = await startTestServer({ PERSISTENCE_SQL_URL: target().url });
    base = server.url;
    const post = (path: string, body: unknown) =>
      fetch(`${base}${path}`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body) });
    await post("/api/v1/translation/sessions/batch", {
      sessions: [
        sessionRecord("sort-b", { filename: "a.xlsx", status: "processing", created_at: "2025-01-02T00:00:00Z" }),
        sessionRecord("sort-a", { filename: "c.xlsx", status: "completed", created_at: "2025-01-03T00:00:00Z" }),
        sessionRecord("sort-c", { filename: "b.xlsx", status: "failed", created_at: "2025-01-01T00:00:00Z" }),
      ],
      durability: "committed",
    });
    await post("/api/v1/translation/tasks/batch", {
      tasks: [
        taskRecord("sort-a", 1, { sheet_name: "B", row_index: 5, status: "pending", created_at: "2025-01-05T00:00:00Z" }),
        taskRecord("sort-a", 2, { sheet_name: "A", row_index: 7, status: "completed", created_at: "2025-01-04T00:00:00Z" }),
        taskRecord("sort-a", 3, { sheet_name: "A", row_index: 6, status: "failed", created_at: "2025-01-06T00:00:00Z" }),
        taskRecord("sort-b", 1, { sheet_name: "A", row_index: 1, created_at: "2025-01-07T00:00:00Z" }),
      ],
      durability: "committed",
    });
  });
  afterAll(async () => {
    await server?.close();
  });

  it("takes order as the original spelling of sort_order, and refuses the two when they disagree", async () => {
    expect(ids((await get("/api/v1/translation/sessions?sort_by=created_at&order=asc")).json)).toEqual(["sort-c", "sort-b", "sort-a"]);
    expect(ids((await get("/api/v1/translation/sessions?order=desc")).json)).toEqual(["sort-a", "sort-b", "sort-c"]);
    expect(ids((await get("/api/v1/translation/sessions?order=ASC&sort_order=asc")).json)).toEqual(["sort-c", "sort-b", "sort-a"]);
    const clash = await get("/api/v1/translation/sessions?order=asc&sort_order=desc");
    expect(clash.status).toBe(400);
    expect(clash.json.errors).toEqual([{ field: "order", message: "disagrees with sort_order; give one of them" }]);
  });

  it.each([
    ["session_id", ["sort-a", "sort-b", "sort-c"]],
    ["filename", ["sort-b", "sort-c", "sort-a"]],
    ["status", ["sort-a", "sort-c", "sort-b"]],
    ["updated_at", expect.any(Array)],
  ])("sorts sessions by %s", async (field, expected) => {
    const res = await get(`/api/v1/translation/sessions?sort_by=${field}&order=asc`);
    expect(res.status).toBe(200);
    expect(ids(res.json)).toEqual(expected);
  });

  it("sorts a session's tasks and all tasks by sort_by and order, and pages through them with tokens", async () => {
    const byRow = await get("/api/v1/translation/sessions/sort-a/tasks?sort_by=row_index&order=desc");
    expect(byRow.json.items.map((t: Json) => t.row_index)).toEqual([7, 6, 5]);
    const byStatus = await get("/api/v1/translation/sessions/sort-a/tasks?sort_by=status");
    expect(byStatus.json.items.map((t: Json) => t.status)).toEqual(["completed", "failed", "pending"]);
    const reversed = await get("/api/v1/translation/sessions/sort-a/tasks?order=desc");
    expect(reversed.json.items.map((t: Json) => `${t.sheet_name}${t.row_index}`)).toEqual(["B5", "A7", "A6"]);
    const newest = await get("/api/v1/translation/tasks?sort_by=created_at&order=desc");
    expect(newest.json.items.map((t: Json) => t.created_at)).toEqual([
      "2025-01-07T00:00:00Z",
      "2025-01-06T00:00:00Z",
      "2025-01-05T00:00:00Z",
      "2025-01-04T00:00:00Z",
    ]);
    const seen: string[] = [];
    let token = "";
    do {
      const page = await get(`/api/v1/translation/tasks?sort_by=task_id&order=desc&page_size=1${token ? `&page_token=${token}` : ""}`);
      seen.push(...page.json.items.map((t: Json) => `${t.session_id}/${t.task_id}`));
      token = page.json.next_page_token;
    } while (token);
    expect(seen).toEqual(["sort-a/TASK_0003", "sort-a/TASK_0002", "sort-a/TASK_0001", "sort-b/TASK_0001"]);
    const unknown = await get("/api/v1/translation/tasks?sort_by=confidence");
    expect(unknown.status).toBe(400);
    expect(unknown.json.errors[0].field).toBe("sort_by");
  });

  it.each(["/api/v1/translation/sessions", "/api/v1/translation/sessions/sort-a/tasks", "/api/v1/translation/tasks"])(
    "answers page=0 on %s with a 400 that names page",
    async (path) => {
      const res = await get(`${path}?page=0`);
      expect(res.status).toBe(400);
      expect(res.json.errors).toEqual([{ field: "page", message: "must be 1 or more" }]);
      expect((await get(`${path}?page=1`)).status).toBe(200);
    },
  );
});

describeEachDialect("REST writes with JSON null", (target) => {
  let server: TestServer;
  let base: string;
  const call = (method: string, path: string, body?: unknown) => restCall(base, method, path, body);
  const writeTasks = (tasks: Json[]) => call("POST", "/api/v1/translation/tasks/batch", { tasks, durability: "committed" });
  const writeSessions = (sessions: Json[]) => call("POST", "/api/v1/translation/sessions/batch", { sessions, durability: "committed" });

  beforeAll(async () => {
    server = await startTestServer({ PERSISTENCE_SQL_URL: target().url });
    base = server.url;
  });
  afterAll(async () => {
    await server?.close();
  });

  it("a task re-queued with \"error_message\": null loses its old error; omitted fields keep theirs", async () => {
    expect((await writeSessions([sessionRecord("null-task")])).status).toBe(200);
    const failed = taskRecord("null-task", 1, {
      status: "failed",
      error_message: "LLM timeout",
      target_text: "draft",
      confidence: 0.4,
      retry_count: 2,
      start_time: "2025-09-30T10:00:00Z",
      duration_ms: 2000,
    });
    expect((await writeTasks([failed])).status).toBe(200);
    const requeued = await writeTasks([
      { task_id: "TASK_0001", session_id: "null-task", status: "pending", error_message: null, target_text: null, confidence: null, duration_ms: null },
    ]);
    expect(requeued.status).toBe(200);
    const task = (await call("GET", "/api/v1/translation/tasks/TASK_0001?session_id=null-task")).json;
    expect(task.status).toBe("pending");
    for (const cleared of ["error_message", "target_text", "confidence", "duration_ms"]) expect(task[cleared] ?? null).toBeNull();
    expect(task).toMatchObject({ retry_count: 2, start_time: "2025-09-30T10:00:00Z", source_text: "Hello, adventurer #1!", sheet_name: "Dialogue", row_index: 11 });
  });

  it("a session written with null metadata and file_path loses them; game_info, left out, stays", async () => {
    expect((await writeSessions([sessionRecord("null-session")])).status).toBe(200);
    expect((await writeSessions([{ session_id: "null-session", metadata: null, file_path: null, status: "completed" }])).status).toBe(200);
    const session = (await call("GET", "/api/v1/translation/sessions/null-session")).json;
    expect(session.metadata ?? null).toBeNull();
    expect(session.file_path ?? null).toBeNull();
    expect(session).toMatchObject({ status: "completed", filename: "null-session.xlsx", game_info: { game_name: "Dragon Quest" } });
  });

  it("null on a key, the status, the stamps or a derived field changes nothing of them", async () => {
    expect((await writeSessions([sessionRecord("null-keep", { created_at: "2025-09-30T10:00:00Z" })])).status).toBe(200);
    const before = (await call("GET", "/api/v1/translation/sessions/null-keep")).json;
    const res = await writeSessions([
      { session_id: "null-keep", status: null, created_at: null, updated_at: null, pending_tasks: null, progress: null, estimated_completion: null, llm_provider: "qwen" },
    ]);
    expect(res.status).toBe(200);
    const after = (await call("GET", "/api/v1/translation/sessions/null-keep")).json;
    expect(after).toMatchObject({ status: before.status, created_at: "2025-09-30T10:00:00Z", llm_provider: "qwen" });
    const noKey = await writeSessions([{ session_id: null, filename: "x.xlsx" }]);
    expect(noKey.status).toBe(400);
    expect(noKey.json.details[0].field_violations).toEqual([{ field: "sessions[0].session_id", description: "is required" }]);
  });

  it("a null on a field the first write needs leaves the session without it: 400", async () => {
    const res = await writeSessions([{ session_id: "null-new", filename: null }]);
    expect(res.status).toBe(400);
    expect(res.json.details[0].field_violations).toEqual([{ field: "sessions[0].filename", description: "is required on the first write of a session" }]);
  });
});

describeEachDialect("REST routes that take no body", (target) => {
  let server: TestServer;
  let base: string;
  const call = (method: string, path: string, body?: string, headers: Record<string, string> = { "content-type": "application/json" }) =>
    restSend(base, method, path, body, body === undefined ? {} : headers);
  const seed = async (id: string) => {
    await call("POST", "/api/v1/translation/sessions/batch", JSON.stringify({ sessions: [sessionRecord(id)], durability: "committed" }));
    await call("POST", "/api/v1/translation/tasks/batch", JSON.stringify({ tasks: [taskRecord(id, 1)], durability: "committed" }));
  };

  beforeAll(async () => {
    server = await startTestServer({ PERSISTENCE_SQL_URL: target().url });
    base = server.url;
  });
  afterAll(async () => {
    await server?.close();
  });

  it("refuses DELETE of a session with {\"soft\": true} in the body, naming soft, and deletes nothing", async () => {
    await seed("nobody-soft");
    const res = await call("DELETE", "/api/v1/translation/sessions/nobody-soft", JSON.stringify({ soft: true }));
    expect(res.status).toBe(400);
    expect(res.json.details[0].field_violations).toEqual([
      { field: "soft", description: "DELETE /api/v1/translation/sessions/{session_id} takes no body; send soft in the query (?soft=...)" },
    ]);
    expect((await call("GET", "/api/v1/translation/sessions/nobody-soft")).status).toBe(200);
    expect((await call("GET", "/api/v1/translation/sessions/nobody-soft/tasks")).json.total).toBe(1);
    // The query is where it goes: a soft delete hides the session and keeps its rows for cleanup.
    const soft = await call("DELETE", "/api/v1/translation/sessions/nobody-soft?soft=true");
    expect(soft.json).toEqual({ status: "soft_deleted", session_id: "nobody-soft", deleted_tasks: 0, hidden_tasks: 1, timestamp: expect.stringMatching(RFC3339_UTC) });
  });

  it.each([
    ["an unknown key", JSON.stringify({ force: true }), [{ field: "force", description: "POST /api/v1/translation/recovery/restore/{session_id} takes no body, and force is no field of it" }]],
    ["the path field", JSON.stringify({ session_id: "other" }), [{ field: "session_id", description: "POST /api/v1/translation/recovery/restore/{session_id} takes no body; session_id is set by the path" }]],
    ["an array", "[1]", [{ field: "body", description: "POST /api/v1/translation/recovery/restore/{session_id} takes no body" }]],
    ["text that is not JSON", "soft=true", [{ field: "body", description: "POST /api/v1/translation/recovery/restore/{session_id} takes no body" }]],
  ])("refuses a restore with %s in the body", async (_name, body, violations) => {
    await seed("nobody-restore");
    const res = await call("POST", "/api/v1/translation/recovery/restore/nobody-restore", body);
    expect(res.status).toBe(400);
    expect(res.json.details[0].field_violations).toEqual(violations);
  });

  it.each([
    ["no body", undefined],
    ["an empty body", ""],
    ["blank space", "  \n"],
    ["the empty object", "{}"],
    ["the empty object, gzipped", gzipSync("{}")],
  ])("serves a restore and a DELETE sent with %s", async (name, body) => {
    const id = `nobody-ok-${name.replace(/\W+/g, "-")}`;
    await seed(id);
    const headers: Record<string, string> = Buffer.isBuffer(body) ? { "content-type": "application/json", "content-encoding": "gzip" } : { "content-type": "application/json" };
    const send = (method: string, path: string) =>
      fetch(`${base}${path}`, { method, headers: body === undefined ? {} : headers, body }).then(async (r) => ({ status: r.status, json: (await r.json()) as Json }));
    const restored = await send("POST", `/api/v1/translation/recovery/restore/${id}`);
    expect(restored.status).toBe(200);
    expect(restored.json.tasks_count).toBe(1);
    const deleted = await send("DELETE", `/api/v1/translation/sessions/${id}`);
    expect(deleted.status).toBe(200);
    expect(deleted.json.deleted_tasks).toBe(1);
    expect((await call("GET", `/api/v1/translation/sessions/${id}`)).status).toBe(404);
  });
});

describe("REST HTTP semantics", () => {
  let server: TestServer;
  let base: string;
  beforeAll(async () => {
    server = await startTestServer({ PERSISTENCE_BUFFER_MAX_RECORDS: "2" });
    base = server.url;
  });
  afterAll(async () => {
    await server?.close();
  });
  const post = (path: string, body: string | Buffer, headers: Record<string, string> = { "content-type": "application/json" }) =>
    fetch(`${base}${path}`, { method: "POST", headers, body });

  it("answers bad input with 400 naming each field, and changes nothing", async () => {
    const res = await post(
      "/api/v1/translation/tasks/batch",
      JSON.stringify({ tasks: [{ task_id: "T1", session_id: "s", status: "done" }, { task_id: "T2", session_id: "s", row_index: "x", start_time: "noon", extra: 1 }] }),
    );
    expect(res.status).toBe(400);
    const body = (await res.json()) as Json;
    expect(body.code).toBe("invalid_argument");
    expect(body.request_id).toBe(res.headers.get("x-request-id"));
    expect(body.details).toEqual([
      {
        "@type": "type.googleapis.com/google.rpc.BadRequest",
        field_violations: [
          { field: "tasks[0].status", description: "must be one of pending, processing, completed, failed, cancelled" },
          { field: "tasks[1].row_index", description: "expected an integer" },
          { field: "tasks[1].start_time", description: "expected an RFC 3339 time such as 2025-09-30T10:00:00Z" },
          { field: "tasks[1].extra", description: "unknown field" },
        ],
      },
    ]);
    // The original design's shape beside it: FastAPI's detail, and errors [{field, message}].
    expect(body.detail).toBe(body.message);
    expect(body.errors).toEqual([
      { field: "tasks[0].status", message: "must be one of pending, processing, completed, failed, cancelled" },
      { field: "tasks[1].row_index", message: "expected an integer" },
      { field: "tasks[1].start_time", message: "expected an RFC 3339 time such as 2025-09-30T10:00:00Z" },
      { field: "tasks[1].extra", message: "unknown field" },
    ]);
    const after = (await (await fetch(`${base}/api/v1/translation/recovery/status`)).json()) as Json;
    expect(after.buffer_records).toBe(0);
  });

  it.each([
    ["malformed JSON", "{", "body: is not valid JSON"],
    ["a non-object body", "[1]", "body: expected a JSON object"],
    ["JSON nested too deep", `{"sessions":[{"session_id":"a","filename":"f","metadata":${"[".repeat(100)}${"]".repeat(100)}}]}`, "nested deeper than 64"],
  ])("answers %s with 400", async (_name, body, message) => {
    const res = await post("/api/v1/translation/sessions/batch", body);
    expect(res.status).toBe(400);
    expect(((await res.json()) as Json).message).toContain(message);
  });

  it("answers invalid UTF-8 with 400", async () => {
    const res = await post("/api/v1/translation/sessions/batch", Buffer.concat([Buffer.from('{"sessions":[{"session_id":"'), Buffer.from([0xc3, 0x28]), Buffer.from('"}]}')]));
    expect(res.status).toBe(400);
    expect(((await res.json()) as Json).message).toContain("body: is not valid UTF-8");
  });

  it("checks the content type and encoding", async () => {
    const form = await post("/api/v1/translation/sessions/batch", "sessions=1", { "content-type": "application/x-www-form-urlencoded" });
    expect(form.status).toBe(415);
    const brotli = await post("/api/v1/translation/sessions/batch", "{}", { "content-type": "application/json", "content-encoding": "br" });
    expect(brotli.status).toBe(415);
  });

  it("reads gzip request bodies and gzips large replies for callers that accept it", async () => {
    const note = "A long translator's note. ".repeat(80);
    const body = gzipSync(JSON.stringify({ sessions: [sessionRecord("gz", { metadata: { note } })], durability: "committed" }));
    const res = await post("/api/v1/translation/sessions/batch", body, { "content-type": "application/json", "content-encoding": "gzip" });
    expect(res.status).toBe(200);
    expect(((await res.json()) as Json).count).toBe(1);

    // REST over h2c too. A reply over 1 KiB is gzipped when asked for, plain otherwise.
    const plain = await h2get(base, "/api/v1/translation/sessions/gz");
    expect(plain.status).toBe(200);
    expect(plain.headers["content-encoding"]).toBeUndefined();
    expect(plain.body.length).toBeGreaterThan(2000);
    expect(JSON.parse(plain.body.toString()) as Json).toMatchObject({ session_id: "gz", filename: "gz.xlsx", metadata: { note } });
    const zipped = await h2get(base, "/api/v1/translation/sessions/gz", { "accept-encoding": "gzip, deflate" });
    expect(zipped.headers["content-encoding"]).toBe("gzip");
    expect(zipped.body.length).toBeLessThan(plain.body.length / 4);
    expect(JSON.parse(gunzipSync(zipped.body).toString())).toEqual(JSON.parse(plain.body.toString()));
  });

  it("refuses bodies over 10 MB with 413, compressed or not", async () => {
    const big = Buffer.alloc(10 * 1024 * 1024 + 1, 0x20);
    const plain = await post("/api/v1/translation/sessions/batch", big);
    expect(plain.status).toBe(413);
    const bomb = await post("/api/v1/translation/sessions/batch", gzipSync(big), { "content-type": "application/json", "content-encoding": "gzip" });
    expect(bomb.status).toBe(413);
    expect(((await bomb.json()) as Json).code).toBe("resource_exhausted");
  });

  it("answers a full buffer with 429 and Retry-After", async () => {
    const res = await post(
      "/api/v1/translation/tasks/batch",
      JSON.stringify({ tasks: [1, 2, 3].map((n) => taskRecord("full", n)) }),
    );
    expect(res.status).toBe(429);
    expect(Number(res.headers.get("retry-after"))).toBeGreaterThanOrEqual(1);
    const body = (await res.json()) as Json;
    expect(body.code).toBe("resource_exhausted");
    expect(body.details[0]["@type"]).toBe("type.googleapis.com/google.rpc.RetryInfo");
  });

  it("serves HEAD for GETs, 405 with Allow for a wrong verb, OPTIONS, and JSON 404s", async () => {
    const head = await fetch(`${base}/api/v1/translation/stats`, { method: "HEAD" });
    expect(head.status).toBe(200);
    expect(Number(head.headers.get("content-length"))).toBeGreaterThan(10);
    expect(await head.text()).toBe("");

    const wrong = await fetch(`${base}/api/v1/translation/sessions/x`, { method: "PUT" });
    expect(wrong.status).toBe(405);
    expect(wrong.headers.get("allow")).toBe("GET, HEAD, DELETE, OPTIONS");
    expect(((await wrong.json()) as Json).code).toBe("unimplemented");
    const options = await fetch(`${base}/api/v1/translation/tasks/batch`, { method: "OPTIONS" });
    expect(options.status).toBe(204);
    expect(options.headers.get("allow")).toBe("POST, GET, HEAD, OPTIONS");

    const unknown = await fetch(`${base}/api/v2/nothing`);
    expect(unknown.status).toBe(404);
    expect((await unknown.json()) as Json).toMatchObject({ code: "not_found", message: "no route for GET /api/v2/nothing" });
    const badQuery = await fetch(`${base}/api/v1/translation/sessions?colour=red`);
    expect(badQuery.status).toBe(400);
    expect(((await badQuery.json()) as Json).details[0].field_violations).toEqual([{ field: "colour", description: "unknown query parameter" }]);
  });

  it("publishes the OpenAPI document and the API pages, Swagger UI and ReDoc", async () => {
    const doc = (await (await fetch(`${base}/openapi.json`)).json()) as Json;
    expect(doc.openapi).toBe("3.1.0");
    expect(Object.keys(doc.paths)).toEqual(expect.arrayContaining(["/api/v1/translation/tasks/batch", "/health", "/"]));
    const page = await fetch(`${base}/docs`);
    expect(page.headers.get("content-type")).toMatch(/^text\/html/);
    expect(await page.text()).toContain("/docs/swagger-ui-bundle.js");
    const bundle = await fetch(`${base}/docs/swagger-ui-bundle.js`);
    expect(bundle.status).toBe(200);
    expect((await bundle.text()).length).toBeGreaterThan(100_000);
    expect((await fetch(`${base}/docs/..%2Fpackage.json`)).status).toBe(404);

    // The original's second page: ReDoc, from the redoc package, nothing fetched from elsewhere.
    const redoc = await fetch(`${base}/redoc`);
    expect(redoc.status).toBe(200);
    expect(redoc.headers.get("content-type")).toMatch(/^text\/html/);
    const html = await redoc.text();
    expect(html).toContain('<redoc spec-url="/openapi.json">');
    expect(html).toContain('<script src="/redoc/redoc.standalone.js">');
    expect(html).not.toMatch(/https?:\/\//);
    const standalone = await fetch(`${base}/redoc/redoc.standalone.js`);
    expect(standalone.headers.get("content-type")).toMatch(/^text\/javascript/);
    expect((await standalone.text()).length).toBeGreaterThan(500_000);
    expect((await fetch(`${base}/redoc/..%2Fpackage.json`)).status).toBe(404);
    expect((await fetch(`${base}/redoc/redoc.lib.js`)).status).toBe(404);
  });
});

describe("REST with unknown fields ignored", () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startTestServer({ PERSISTENCE_REST_IGNORE_UNKNOWN_FIELDS: "on" });
  });
  afterAll(async () => {
    await server?.close();
  });

  it("drops JSON fields it does not know", async () => {
    const res = await fetch(`${server.url}/api/v1/translation/sessions/batch`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ sessions: [sessionRecord("lenient", { legacy_flag: true })], client_version: "1.2" }),
    });
    expect(res.status).toBe(200);
  });

  it("still refuses query parameters it does not know, on every kind of route, and deletes nothing", async () => {
    const list = await fetch(`${server.url}/api/v1/translation/sessions?_=123`);
    expect(list.status).toBe(400);
    expect(((await list.json()) as Json).details[0].field_violations).toEqual([{ field: "_", description: "unknown query parameter" }]);
    await fetch(`${server.url}/api/v1/translation/sessions/batch`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ sessions: [sessionRecord("lenient-old", { status: "completed", updated_at: "2020-01-01T00:00:00Z" })], durability: "committed" }),
    });
    const cleanup = await fetch(`${server.url}/api/v1/translation/sessions/cleanup?dryrun=true`, { method: "POST" });
    expect(cleanup.status).toBe(400);
    expect(((await cleanup.json()) as Json).details[0].field_violations).toEqual([{ field: "dryrun", description: "unknown query parameter" }]);
    const remove = await fetch(`${server.url}/api/v1/translation/sessions/lenient-old?sfot=true`, { method: "DELETE" });
    expect(remove.status).toBe(400);
    expect((await fetch(`${server.url}/api/v1/translation/sessions/lenient-old`)).status).toBe(200);
  });
});
