"use strict";
// Read latency over a large store: sessions of 1,000 tasks loaded straight into MariaDB, then
// GetSession and ListSessionTasks (page_size 100, random pages) one call at a time over gRPC.
const path = require("node:path");
const mysql = require("mysql2/promise");
const { createClient } = require("@connectrpc/connect");
const { createGrpcTransport, Http2SessionManager } = require("@connectrpc/connect-node");
const { ROOT, startService } = require("../lib/service");
const db = require("../lib/mariadb");
const { quantiles } = require("../lib/stats");

const { TranslationService } = require(path.join(ROOT, "dist/gen/persistence/v1/translation_pb.js"));
const { SystemService } = require(path.join(ROOT, "dist/gen/persistence/v1/system_pb.js"));

const TASKS = 1000;
const STATUSES = ["completed", "completed", "completed", "failed", "processing", "pending"];

async function load(database, sessions) {
  await db.freshDatabase(database);
  const conn = await mysql.createConnection({ ...db.SERVER, database });
  const now = Date.now() * 1000;
  const started = performance.now();
  try {
    for (let s = 0; s < sessions; s += 100) {
      const rows = [];
      for (let i = s; i < Math.min(sessions, s + 100); i++) rows.push([`s-${i}`, `file-${i}.xlsx`, "processing", TASKS, now - 3600e6, now]);
      await conn.query("insert into translation_sessions (session_id, filename, status, total_tasks, created_at, updated_at) values ?", [rows]);
    }
    for (let s = 0; s < sessions; s++) {
      const rows = [];
      for (let t = 0; t < TASKS; t++) {
        rows.push([`s-${s}`, `TASK_${String(t).padStart(4, "0")}`, `B_${t % 20}`, `Sheet${t % 4}`, t, "Text", `Source line ${t} of session ${s}`, STATUSES[t % 6], now - 3600e6, now]);
      }
      await conn.query(
        "insert into translation_tasks (session_id, task_id, batch_id, sheet_name, row_index, column_name, source_text, status, created_at, updated_at) values ?",
        [rows],
      );
    }
    // Loaded past the write path, so the counters it keeps are filled here, as the migration fills them.
    await conn.query(`insert into translation_session_counts (session_id, total, pending, processing, completed, failed, cancelled)
      select session_id, count(*), sum(status = 'pending'), sum(status = 'processing'), sum(status = 'completed'), sum(status = 'failed'), sum(status = 'cancelled')
      from translation_tasks group by session_id`);
    await conn.query("analyze table translation_sessions, translation_tasks, translation_session_counts");
  } finally {
    await conn.end();
  }
  return (performance.now() - started) / 1000;
}

async function readLatency({ sessions, calls, database = "bench_reads" }) {
  const loadSeconds = await load(database, sessions);
  const service = await startService({ PERSISTENCE_SQL_URL: db.url(database) });
  const session = new Http2SessionManager(service.url);
  const client = createClient(TranslationService, createGrpcTransport({ baseUrl: service.url, sessionManager: session }));
  const system = createClient(SystemService, createGrpcTransport({ baseUrl: service.url, sessionManager: session }));
  try {
    const pick = () => `s-${Math.floor(Math.random() * sessions)}`;
    for (let i = 0; i < 200; i++) await client.getSession({ sessionId: pick() });
    const timed = async (call) => {
      const samples = [];
      for (let i = 0; i < calls; i++) {
        const t = performance.now();
        await call();
        samples.push(performance.now() - t);
      }
      return quantiles(samples, [0.5, 0.99]);
    };
    // Where GetSession's time goes: its two queries alone (in parallel on two connections, as the
    // service runs them), and a bare Echo through the same RPC stack, beside it in the same run.
    const sqlPool = mysql.createPool({ ...db.SERVER, database, connectionLimit: 2 });
    const sqlOnly = async () => {
      const id = pick();
      await Promise.all([
        sqlPool.query("select * from translation_sessions where session_id = ? and deleted_at is null", [id]),
        sqlPool.query("select session_id, total, pending, processing, completed, failed, cancelled from translation_session_counts where session_id in (?)", [id]),
      ]);
    };
    const echoPayload = new Uint8Array(64);
    // Each figure twice, in turn.
    const getSession = [];
    const listSessionTasks = [];
    const getSessionSql = [];
    const echo = [];
    try {
      for (let i = 0; i < 2; i++) {
        getSession.push(await timed(() => client.getSession({ sessionId: pick() })));
        getSessionSql.push(await timed(sqlOnly));
        echo.push(await timed(() => system.echo({ payload: echoPayload })));
        listSessionTasks.push(await timed(() => client.listSessionTasks({ sessionId: pick(), pageSize: 100, page: 1 + Math.floor(Math.random() * 10) })));
      }
    } finally {
      await sqlPool.end();
    }
    return { tasks_stored: sessions * TASKS, load_seconds: Math.round(loadSeconds), calls, get_session: getSession, get_session_sql_only: getSessionSql, echo, list_session_tasks: listSessionTasks };
  } finally {
    session.abort();
    await service.stop();
    await db.dropDatabase(database);
  }
}

module.exports = { readLatency };
