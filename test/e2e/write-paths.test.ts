import { spawn, spawnSync } from "node:child_process";
import { mkdtempSync, readdirSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import readline from "node:readline";
import { sql } from "kysely";
import { Registry } from "prom-client";
import { openServiceSql } from "../../server/schema";
import { createLogger } from "../../server/core/logger";
import { createPatch } from "../../server/core/patch";
import { openWal } from "../../server/core/wal";
import { serializePatches } from "../../server/core/write-batcher";
import { openWritePath } from "../../server/platform/write-path";
import { TRANSLATION_PATCH_TABLES } from "../../server/translation/translation.table";
import { ROOT } from "../support/service-process";
import { describeEachDialect } from "../support/sql-targets";

// eslint-disable-next-line @typescript-eslint/no-require-imports
const { buildIfStale } = require("../../scripts/build-if-stale.js") as { buildIfStale: () => string };
const FIXTURE = path.join(ROOT, "test", "fixtures", "two-write-paths.js");

interface Status {
  walReplayed: number;
  recordsWritten: number;
}

describeEachDialect("write paths side by side", (target) => {
  beforeAll(() => buildIfStale());

  it("flush, replay after SIGKILL and report each on its own: translation's (lww) and an append table", async () => {
    const dataDir = mkdtempSync(path.join(os.tmpdir(), "persistence-paths-"));
    const sessionId = `paths-${process.pid}-${Date.now()}`;
    try {
      // Writes until killed; each printed line is a batch both write paths acknowledged at LOGGED.
      const writer = spawn(process.execPath, [FIXTURE, "write", target().url, dataDir, sessionId], { stdio: ["ignore", "pipe", "inherit"] });
      const tasks: string[] = [];
      const events: string[] = [];
      await new Promise<void>((resolve) => {
        readline.createInterface({ input: writer.stdout }).on("line", (line) => {
          const batch = JSON.parse(line) as { tasks: string[]; events: string[] };
          tasks.push(...batch.tasks);
          events.push(...batch.events);
          if (tasks.length >= 400 && writer.exitCode === null) {
            writer.kill("SIGKILL");
            resolve();
          }
        });
      });
      await new Promise((r) => writer.once("exit", r));
      expect(readdirSync(path.join(dataDir, "wal")).sort()).toEqual(["test-append", "translation"]);

      const replay = spawnSync(process.execPath, [FIXTURE, "replay", target().url, dataDir, sessionId], { encoding: "utf8" });
      expect(replay.status).toBe(0);
      const report = JSON.parse(replay.stdout) as { translation: Status; appends: Status; metrics: string };
      expect(report.translation.walReplayed).toBeGreaterThanOrEqual(tasks.length);
      expect(report.appends.walReplayed).toBeGreaterThanOrEqual(events.length);
      expect(report.translation.recordsWritten).toBe(report.translation.walReplayed);
      expect(report.appends.recordsWritten).toBe(report.appends.walReplayed);
      expect(report.metrics).toContain(`persistence_flushed_records_total{write_path="test-append",table="test_appends"} ${report.appends.recordsWritten}`);
      expect(report.metrics).toContain(`persistence_flushed_records_total{write_path="translation",table="translation_tasks"} ${report.translation.recordsWritten}`);
      expect(report.metrics).toMatch(/persistence_buffer_records\{write_path="test-append"\} 0/);

      const store = await openServiceSql(target().url);
      try {
        const stored = await sql<{ task_id: string }>`select task_id from translation_tasks where session_id = ${sessionId}`.execute(store.db);
        expect(tasks.filter((t) => !stored.rows.some((r) => r.task_id === t))).toEqual([]);
        const appended = await sql<{ id: string; seq: number }>`select id, seq from test_appends where id like ${`${sessionId}-%`} order by seq`.execute(store.db);
        expect(events.filter((e) => !appended.rows.some((r) => r.id === e))).toEqual([]);
        // Insert-only and idempotent: a replayed event is there once.
        expect(appended.rows.length).toBe(new Set(appended.rows.map((r) => r.id)).size);
      } finally {
        await store.close();
      }
    } finally {
      rmSync(dataDir, { recursive: true, force: true });
    }
  }, 120_000);

  it("reads back a log left in the layout from before write paths had folders (<data dir>/wal/*.wal)", async () => {
    const dataDir = mkdtempSync(path.join(os.tmpdir(), "persistence-legacy-"));
    const sessionId = `legacy-${process.pid}-${Date.now()}`;
    const store = await openServiceSql(target().url);
    try {
      const old = await openWal(path.join(dataDir, "wal"));
      const patch = createPatch("translation_tasks", [sessionId, "T1"], Date.now() * 1000, [["source_text", "kept across the upgrade"]]);
      await old.wal.append(serializePatches([patch]), 1);
      await old.wal.close();

      const registry = new Registry();
      const logger = createLogger("warn", { write: () => undefined });
      const limits = { flushMaxRecords: 1000, flushIntervalMs: 600_000, maxRecords: 1000, maxBytes: 1 << 20 };
      const opened = await openWritePath({ name: "translation", tables: TRANSLATION_PATCH_TABLES, mode: "lww", sql: store, dataDir, logWrites: true, limits, logger, registry });
      expect(opened.batcher.status().walReplayed).toBe(1);
      await opened.batcher.flush(10_000);
      await opened.batcher.close(1000);
      const { rows } = await sql<{ source_text: string }>`select source_text from translation_tasks where session_id = ${sessionId}`.execute(store.db);
      expect(rows).toEqual([{ source_text: "kept across the upgrade" }]);
      expect(readdirSync(path.join(dataDir, "wal")).filter((f) => f.endsWith(".wal"))).toEqual([]);
    } finally {
      await store.close();
      rmSync(dataDir, { recursive: true, force: true });
    }
  });
});
