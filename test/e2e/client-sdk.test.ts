import { mkdtempSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { timestampNow } from "@bufbuild/protobuf/wkt";
import { sql } from "kysely";
import {
  createPersistenceClient,
  createTranslationBatcher,
  Durability,
  SessionStatus,
  TaskStatus,
  type BatchErrorEvent,
  type TranslationBatcher,
} from "../../clients/src/index";
import { openServiceSql } from "../../server/schema";
import { startServiceProcess, type ServiceProcess } from "../support/service-process";
import { createSqlTarget, type SqlTarget } from "../support/sql-targets";
import { PROTOCOLS, type Protocol } from "../support/test-server";

const TASKS_PER_SESSION = 1000;
const WORKERS = 10;

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * The translation backend's life cycle through the SDK: a session of 1,000 tasks is uploaded
 * (pending), then 10 workers take tasks and report each one processing, then completed with its
 * translation; the session's counters and status follow. `between` runs after the workers' first
 * half, while they keep going (it may stop the service). Returns the final state it reported.
 */
async function translateSession(
  batcher: TranslationBatcher,
  sessionId: string,
  between: () => Promise<void> = async () => {},
): Promise<Map<string, string>> {
  batcher.persistSession({ sessionId, filename: `${sessionId}.xlsx`, status: SessionStatus.PENDING, totalTasks: TASKS_PER_SESSION, llmProvider: "openai" });
  const ids = Array.from({ length: TASKS_PER_SESSION }, (_, i) => `TASK_${String(i + 1).padStart(4, "0")}`);
  expect(
    batcher.persistTasks(
      ids.map((taskId, i) => ({
        sessionId,
        taskId,
        batchId: `BATCH_${Math.floor(i / 100)}`,
        sheetName: i % 2 === 0 ? "Dialogue" : "Items",
        rowIndex: i,
        columnName: "Text",
        sourceText: `source ${taskId}`,
        status: TaskStatus.PENDING,
      })),
    ),
  ).toBe(true);
  batcher.persistSession({ sessionId, status: SessionStatus.PROCESSING });

  const finals = new Map<string, string>();
  let completed = 0;
  const worker = async (w: number, half: 0 | 1) => {
    const mine = ids.filter((_, i) => i % WORKERS === w && (i < TASKS_PER_SESSION / 2 ? 0 : 1) === half);
    for (const taskId of mine) {
      expect(batcher.persistTasks([{ sessionId, taskId, status: TaskStatus.PROCESSING, startTime: timestampNow() }])).toBe(true);
      await new Promise((resolve) => setImmediate(resolve));
      const target = `traduction de ${taskId} par ${w}`;
      expect(
        batcher.persistTasks([{ sessionId, taskId, status: TaskStatus.COMPLETED, targetText: target, confidence: 0.9, durationMs: 12 }]),
      ).toBe(true);
      finals.set(taskId, target);
      completed++;
      if (completed % 100 === 0) batcher.persistSession({ sessionId, completedTasks: completed, processingTasks: 0 });
    }
  };
  await Promise.all(Array.from({ length: WORKERS }, (_, w) => worker(w, 0)));
  await between();
  await Promise.all(Array.from({ length: WORKERS }, (_, w) => worker(w, 1)));
  batcher.persistSession({ sessionId, status: SessionStatus.COMPLETED, completedTasks: TASKS_PER_SESSION });
  return finals;
}

/** The session and its tasks hold exactly the final state the run reported. */
async function expectFinalState(target: SqlTarget, sessionId: string, finals: Map<string, string>): Promise<void> {
  const store = await openServiceSql(target.url);
  try {
    const { rows: sessions } = await sql<{ status: string; completed_tasks: number; total_tasks: number }>`
      select status, completed_tasks, total_tasks from translation_sessions where session_id = ${sessionId}`.execute(store.db);
    expect(sessions.map((s) => ({ ...s, completed_tasks: Number(s.completed_tasks), total_tasks: Number(s.total_tasks) }))).toEqual([
      { status: "completed", completed_tasks: TASKS_PER_SESSION, total_tasks: TASKS_PER_SESSION },
    ]);
    const { rows: tasks } = await sql<{ task_id: string; status: string; target_text: string | null; source_text: string; confidence: number }>`
      select task_id, status, target_text, source_text, confidence from translation_tasks where session_id = ${sessionId}`.execute(store.db);
    expect(tasks).toHaveLength(TASKS_PER_SESSION);
    const wrong = tasks.filter(
      (t) => t.status !== "completed" || t.target_text !== finals.get(t.task_id) || t.source_text !== `source ${t.task_id}` || Number(t.confidence) !== 0.9,
    );
    expect(wrong).toEqual([]);
  } finally {
    await store.close();
  }
}

describe("the client SDK against the service process on MariaDB", () => {
  const target = createSqlTarget("mysql", "client_sdk");
  let service: ServiceProcess | undefined;
  let dataDir: string;
  let env: Record<string, string>;

  beforeAll(async () => {
    dataDir = mkdtempSync(path.join(os.tmpdir(), "persistence-sdk-"));
    env = { PERSISTENCE_SQL_URL: target.url, PERSISTENCE_DATA_DIR: dataDir, PERSISTENCE_FLUSH_INTERVAL_MS: "200" };
    service = await startServiceProcess(env);
  });
  afterAll(async () => {
    await service?.stop();
    rmSync(dataDir, { recursive: true, force: true });
    await target.drop();
  });

  it.each(PROTOCOLS)("runs a translation over %s and the database ends with exactly the final state", async (protocol: Protocol) => {
    const client = createPersistenceClient({ baseUrl: service!.url, protocol });
    const errors: BatchErrorEvent[] = [];
    const batcher = createTranslationBatcher(client, { onError: (e) => errors.push(e) });
    try {
      const sessionId = `sdk-run-${protocol}`;
      const finals = await translateSession(batcher, sessionId);
      const flushed = await batcher.flushAll();
      expect(["flushed", "empty"]).toContain(flushed.status);
      expect(errors).toEqual([]);
      const stats = batcher.stats();
      expect(stats.held).toBe(0);
      expect(stats.dropped).toBe(0);
      // 1000 + 2 × 1000 task records and 13 session records persisted; coalescing sent fewer.
      expect(stats.persisted).toBe(3000 + 13);
      expect(stats.sent).toBeLessThan(stats.persisted);
      await expectFinalState(target, sessionId, finals);
    } finally {
      await batcher.close();
      client.close();
    }
  });

  it("loses nothing when the service is stopped for 5 s mid-run, and never blocks the workers", async () => {
    const client = createPersistenceClient({ baseUrl: service!.url, protocol: "grpc", timeoutMs: 2000 });
    const errors: BatchErrorEvent[] = [];
    const batcher = createTranslationBatcher(client, { onError: (e) => errors.push(e), durability: Durability.LOGGED, retry: { maxDelayMs: 1000 } });
    const sessionId = "sdk-outage";
    let persistWhileDown = 0;
    try {
      const finals = await translateSession(batcher, sessionId, async () => {
        const port = new URL(service!.url).port;
        await service!.stop("SIGKILL");
        service = undefined;
        // The workers' second half runs while the service is down: persist* must not wait for it.
        const started = performance.now();
        batcher.persistTasks([{ sessionId, taskId: "TASK_0001", retryCount: 1 }]);
        persistWhileDown = performance.now() - started;
        await sleep(5000);
        service = await startServiceProcess({ ...env, PERSISTENCE_LISTEN: `127.0.0.1:${port}` });
      });
      await batcher.flushAll({ timeoutMs: 60_000 });
      expect(persistWhileDown).toBeLessThan(50);
      expect(errors.length).toBeGreaterThan(0);
      expect(errors.filter((e) => !e.willRetry).map((e) => `${e.error.codeName}: ${e.error.message}`)).toEqual([]);
      expect(batcher.stats()).toMatchObject({ held: 0, dropped: 0 });
      await expectFinalState(target, sessionId, finals);
    } finally {
      await batcher.close().catch(() => {});
      client.close();
    }
  });
});
