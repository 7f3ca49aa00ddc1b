import net from "node:net";
import { Code, ConnectError, type Interceptor } from "@connectrpc/connect";
import {
  createPersistenceClient,
  createTranslationBatcher,
  Durability,
  PersistenceError,
  recoverIncompleteSessions,
  SessionStatus,
  TaskStatus,
  type BatchErrorEvent,
  type PersistenceClient,
} from "../../clients/src/index";
import { merge } from "../../clients/src/batcher";
import { backoffMs } from "../../clients/src/retry";
import { TaskSchema } from "../../clients/src/gen/persistence/v1/translation_pb";
import { secret } from "../support/secrets";
import { PROTOCOLS, startTestServer, type TestServer } from "../support/test-server";

/** A loopback port nothing listens on. */
async function closedPort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as net.AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/** An interceptor that counts the attempts the retry layer makes. */
function countAttempts(counts: Map<string, number>): Interceptor {
  return (next) => (req) => {
    counts.set(req.method.name, (counts.get(req.method.name) ?? 0) + 1);
    return next(req);
  };
}

describe("client SDK: calls, errors, retries", () => {
  let server: TestServer;
  beforeAll(async () => {
    // A small buffer and a slow flush make RESOURCE_EXHAUSTED easy to provoke.
    server = await startTestServer({ PERSISTENCE_BUFFER_MAX_RECORDS: "3", PERSISTENCE_FLUSH_INTERVAL_MS: "700" });
  });
  afterAll(async () => {
    await server?.close();
  });

  it.each(PROTOCOLS)("gives typed clients for every service over %s", async (protocol) => {
    const client = createPersistenceClient({ baseUrl: server.url, protocol });
    try {
      expect((await client.system.getInfo({})).name).toBe("persistence");
      expect((await client.health.check({})).status).toBe(1);
      const reply = await client.translation.batchUpsertSessions({ sessions: [{ sessionId: `typed-${protocol}`, filename: "a.xlsx" }], durability: Durability.COMMITTED });
      expect(reply.durability).toBe(Durability.COMMITTED);
      expect((await client.translation.getSession({ sessionId: `typed-${protocol}` })).session?.filename).toBe("a.xlsx");
    } finally {
      client.close();
    }
  });

  it("raises PersistenceError with the code, field violations and request id readable", async () => {
    const client = createPersistenceClient({ baseUrl: server.url });
    try {
      const invalid = await client.translation
        .batchUpsertTasks({ tasks: [{ sessionId: "s", taskId: "t", confidence: 7 }] })
        .then(() => undefined, (e: unknown) => e);
      expect(invalid).toBeInstanceOf(PersistenceError);
      expect(invalid).toBeInstanceOf(ConnectError);
      const error = invalid as PersistenceError;
      expect(error.code).toBe(Code.InvalidArgument);
      expect(error.codeName).toBe("invalid_argument");
      expect(error.fieldViolations).toEqual([{ field: "tasks[0].confidence", description: expect.stringContaining("0") }]);
      expect(error.transient).toBe(false);
      expect(error.requestId).toMatch(/^[0-9a-f-]{36}$/);
      expect(server.logs.some((l) => l.request_id === error.requestId && l.code === "invalid_argument")).toBe(true);

      const missing = (await client.translation.getSession({ sessionId: "nobody" }).catch((e: unknown) => e)) as PersistenceError;
      expect(missing.codeName).toBe("not_found");
      expect(missing.fieldViolations).toEqual([]);
    } finally {
      client.close();
    }
  });

  it("retries a write refused by a full buffer after the delay the service asks for, under one request id", async () => {
    const client = createPersistenceClient({ baseUrl: server.url, protocol: "grpc" });
    const tasks = (n: number) => [1, 2].map((i) => ({ sessionId: "full", taskId: `T${n}-${i}`, status: TaskStatus.PENDING }));
    try {
      await client.translation.batchUpsertTasks({ tasks: tasks(1), durability: Durability.ACCEPTED });
      // 2 held + 2 more > 3: refused with a retry delay until the flush (700 ms) frees the buffer.
      const started = Date.now();
      const reply = await client.translation.batchUpsertTasks({ tasks: tasks(2) }, { headers: { "x-request-id": "retry-me" } });
      expect(reply.count).toBe(2);
      expect(Date.now() - started).toBeGreaterThan(100);
      const attempts = server.logs.filter((l) => l.request_id === "retry-me").map((l) => l.code);
      expect(attempts.length).toBeGreaterThanOrEqual(2);
      expect(attempts.at(-1)).toBe("ok");
      expect(attempts.slice(0, -1).every((c) => c === "resource_exhausted")).toBe(true);
    } finally {
      client.close();
    }
  });

  it("retries idempotent calls when the service is unreachable, and never the others", async () => {
    const counts = new Map<string, number>();
    const client = createPersistenceClient({
      baseUrl: `http://127.0.0.1:${await closedPort()}`,
      retry: { maxAttempts: 3, initialDelayMs: 10 },
      interceptors: [countAttempts(counts)],
    });
    try {
      const read = (await client.translation.getSession({ sessionId: "x" }).catch((e: unknown) => e)) as PersistenceError;
      expect(read.code).toBe(Code.Unavailable);
      expect(read.transient).toBe(true);
      const cleanup = (await client.translation.cleanupSessions({ dryRun: true }).catch((e: unknown) => e)) as PersistenceError;
      expect(cleanup.code).toBe(Code.Unavailable);
      expect(Object.fromEntries(counts)).toEqual({ GetSession: 3, CleanupSessions: 1 });
    } finally {
      client.close();
    }
  });

  it("sends large batches over HTTP/2 and reports one over the service's 10 MB limit as RESOURCE_EXHAUSTED", async () => {
    // Node's HTTP/2 client would reset a request this large itself (ENHANCE_YOUR_CALM) with its
    // default 10 MB session budget; the SDK raises it so the service's own answer arrives.
    const client = createPersistenceClient({ baseUrl: server.url, protocol: "grpc", retry: false });
    try {
      const text = "x".repeat(60_000);
      const tasks = Array.from({ length: 180 }, (_, i) => ({ sessionId: "big-batch", taskId: `T${i}`, sourceText: text }));
      const refused = (await client.translation.batchUpsertTasks({ tasks }).catch((e: unknown) => e)) as PersistenceError;
      expect(refused.codeName).toBe("resource_exhausted");
      expect(refused.message).toMatch(/larger than configured readMaxBytes 10485760/);
    } finally {
      client.close();
    }
  });

  it("puts a deadline on every call, streams included", async () => {
    const client = createPersistenceClient({ baseUrl: server.url, timeoutMs: 300 });
    try {
      await client.translation.batchUpsertSessions({ sessions: [{ sessionId: "watched", filename: "w.xlsx" }], durability: Durability.COMMITTED });
      const started = Date.now();
      const error = await (async () => {
        for await (const _ of client.translation.watchSession({ sessionId: "watched" }));
      })().catch((e: unknown) => e);
      expect(error).toBeInstanceOf(PersistenceError);
      expect((error as PersistenceError).code).toBe(Code.DeadlineExceeded);
      expect(Date.now() - started).toBeLessThan(5000);
    } finally {
      client.close();
    }
  });

  it("sends the API key as a bearer token and custom headers on every call", async () => {
    const seen: (string | null)[] = [];
    const client = createPersistenceClient({
      baseUrl: server.url,
      apiKey: secret("sdk-key-0123456789abcdef"),
      headers: { "x-team": "localisation" },
      interceptors: [(next) => (req) => (seen.push(req.header.get("authorization"), req.header.get("x-team")), next(req))],
    });
    try {
      await client.system.getInfo({});
      expect(seen).toEqual(["Bearer sdk-key-0123456789abcdef", "localisation"]);
    } finally {
      client.close();
    }
  });

  it("backs off with jitter, honouring the service's delay", () => {
    for (let attempt = 1; attempt <= 6; attempt++) {
      const base = Math.min(5000, 100 * 2 ** (attempt - 1));
      const d = backoffMs(attempt, undefined);
      expect(d).toBeGreaterThanOrEqual(base / 2);
      expect(d).toBeLessThanOrEqual(base);
    }
    const told = backoffMs(1, 800);
    expect(told).toBeGreaterThanOrEqual(800);
    expect(told).toBeLessThanOrEqual(960);
  });
});

describe("client SDK: batcher and recovery", () => {
  let server: TestServer;
  let client: PersistenceClient;
  beforeAll(async () => {
    server = await startTestServer({ PERSISTENCE_FLUSH_INTERVAL_MS: "100" });
    client = createPersistenceClient({ baseUrl: server.url });
  });
  afterAll(async () => {
    client?.close();
    await server?.close();
  });

  it("coalesces updates of one record into one, keeping every field and the newest values", async () => {
    const batcher = createTranslationBatcher(client, { flushIntervalMs: 50 });
    batcher.persistSession({ sessionId: "coal", filename: "c.xlsx" });
    batcher.persistTasks([{ sessionId: "coal", taskId: "T1", sourceText: "Hello", status: TaskStatus.PENDING, targetText: "draft" }]);
    for (let i = 1; i <= 9; i++) batcher.persistTasks([{ sessionId: "coal", taskId: "T1", status: TaskStatus.PROCESSING, retryCount: i }]);
    batcher.persistTasks([{ sessionId: "coal", taskId: "T1", status: TaskStatus.COMPLETED, clearFields: ["target_text"] }]);
    await batcher.flushAll();
    expect(batcher.stats()).toMatchObject({ persisted: 12, sent: 2, requests: 2, held: 0 });
    const { task } = await client.translation.getTask({ sessionId: "coal", taskId: "T1" });
    expect(task).toMatchObject({ sourceText: "Hello", status: TaskStatus.COMPLETED, retryCount: 9 });
    expect(task?.targetText ?? "").toBe("");
    await batcher.close();
    expect(batcher.persistTasks([{ sessionId: "coal", taskId: "T2" }])).toBe(false);
  });

  it("merges patches field by field, clear_fields included", () => {
    expect(merge(TaskSchema, { taskId: "a", targetText: "x", clearFields: ["context"] }, { context: "c", status: 2 })).toEqual({
      taskId: "a",
      targetText: "x",
      context: "c",
      status: 2,
    });
    expect(merge(TaskSchema, { taskId: "a", targetText: "x" }, { clearFields: ["target_text"] })).toEqual({ taskId: "a", clearFields: ["target_text"] });
  });

  it("drops only the records the service names as invalid and delivers the rest", async () => {
    const errors: BatchErrorEvent[] = [];
    const batcher = createTranslationBatcher(client, { onError: (e) => errors.push(e) });
    batcher.persistTasks([
      { sessionId: "mixed", taskId: "ok-1", status: TaskStatus.PENDING },
      { sessionId: "mixed", taskId: "bad", confidence: 3 },
      { sessionId: "mixed", taskId: "ok-2", status: TaskStatus.PENDING },
    ]);
    await batcher.flushAll();
    expect(errors).toHaveLength(1);
    expect(errors[0]).toMatchObject({ kind: "tasks", records: 1, willRetry: false });
    expect(errors[0]?.error.fieldViolations[0]?.field).toBe("tasks[1].confidence");
    const { items } = await client.translation.listTasks({ sessionId: "mixed" });
    expect(items.map((t) => t.taskId).sort()).toEqual(["ok-1", "ok-2"]);
    expect(batcher.stats()).toMatchObject({ sent: 2, dropped: 1, held: 0 });
  });

  it("holds a bounded number of records while the service is unreachable, refusing more without blocking", async () => {
    const down = createPersistenceClient({ baseUrl: `http://127.0.0.1:${await closedPort()}`, retry: false });
    const errors: BatchErrorEvent[] = [];
    const batcher = createTranslationBatcher(down, { maxHeldRecords: 5, flushIntervalMs: 10, retry: { initialDelayMs: 20, maxDelayMs: 50 }, onError: (e) => errors.push(e) });
    try {
      expect(batcher.persistTasks([1, 2, 3, 4, 5].map((n) => ({ sessionId: "s", taskId: `T${n}` })))).toBe(true);
      // Updates of held records still fit; a sixth record does not.
      expect(batcher.persistTasks([{ sessionId: "s", taskId: "T1", status: TaskStatus.FAILED }])).toBe(true);
      expect(batcher.persistTasks([{ sessionId: "s", taskId: "T6" }])).toBe(false);
      await new Promise((resolve) => setTimeout(resolve, 200));
      expect(errors.some((e) => e.willRetry && e.error.code === Code.Unavailable)).toBe(true);
      expect(errors.some((e) => !e.willRetry && e.error.code === Code.ResourceExhausted && e.records === 1)).toBe(true);
      expect(batcher.stats()).toMatchObject({ held: 5, dropped: 1, sent: 0 });
      await expect(batcher.flushAll({ timeoutMs: 100 })).rejects.toThrow(/5 records still unsent/);
      await expect(batcher.close({ timeoutMs: 50 })).rejects.toThrow(/still unsent/);
      expect(errors.at(-1)).toMatchObject({ kind: "tasks", records: 5, willRetry: false });
      expect(batcher.stats().dropped).toBe(6);
    } finally {
      down.close();
    }
  });

  it("recovers incomplete sessions, streaming the large ones, and reports a failing handler without stopping", async () => {
    const batcher = createTranslationBatcher(client);
    for (const [sessionId, n] of [["rec-small", 3], ["rec-large", 40], ["rec-broken", 2]] as const) {
      batcher.persistSession({ sessionId, filename: `${sessionId}.xlsx`, status: SessionStatus.PROCESSING });
      batcher.persistTasks(Array.from({ length: n }, (_, i) => ({ sessionId, taskId: `T${String(i).padStart(3, "0")}`, status: i === 0 ? TaskStatus.COMPLETED : TaskStatus.PENDING })));
    }
    await batcher.close();
    const seen = new Map<string, string[]>();
    const report = await recoverIncompleteSessions(
      client,
      (session, tasks) => {
        if (session.sessionId === "rec-broken") throw new Error("handler failed");
        seen.set(session.sessionId, tasks.map((t) => t.taskId));
      },
      { streamAbove: 10, chunkSize: 7 },
    );
    // Sessions of the earlier cases are incomplete too; these are the ones this case made.
    expect(report.recovered.filter((id) => id.startsWith("rec-")).sort()).toEqual(["rec-large", "rec-small"]);
    expect(report.failed.map((f) => [f.sessionId, f.error.message])).toEqual([["rec-broken", "handler failed"]]);
    expect(seen.get("rec-small")).toEqual(["T001", "T002"]);
    expect(seen.get("rec-large")).toHaveLength(39);
    expect(report.tasks).toBe(41);
    expect(server.logs.some((l) => l.method === "StreamRestoreSession")).toBe(true);
  });
});
