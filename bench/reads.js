#!/usr/bin/env node
// Read latency over a large store on the local MariaDB: loads sessions of 1,000 tasks each (1M tasks
// by default) straight into the tables, starts the service on them, and times GetSession and
// ListSessionTasks (page_size 100, random pages) one call at a time over gRPC.
// Usage: npm run build && node bench/reads.js [sessions] [calls]
"use strict";
const { spawn } = require("node:child_process");
const fs = require("node:fs");
const os = require("node:os");
const path = require("node:path");
const readline = require("node:readline");
const mysql = require("mysql2/promise");
const { createClient } = require("@connectrpc/connect");
const { createGrpcTransport } = require("@connectrpc/connect-node");

const root = path.resolve(__dirname, "..");
const { TranslationService } = require(path.join(root, "dist/gen/persistence/v1/translation_pb.js"));
const { openSqlBackend } = require(path.join(root, "dist/server/backends/sql/sql-backend.js"));

const SESSIONS = Number(process.argv[2] ?? 1000);
const CALLS = Number(process.argv[3] ?? 2000);
const TASKS = 1000;
const DATABASE = "bench_reads";
const STATUSES = ["completed", "completed", "completed", "failed", "processing", "pending"];

async function load() {
  const admin = await mysql.createConnection({ host: "127.0.0.1", user: "root" });
  await admin.query(`drop database if exists ${DATABASE}`);
  await admin.end();
  await (await openSqlBackend(`mysql://root@127.0.0.1:3306/${DATABASE}`)).close();
  const conn = await mysql.createConnection({ host: "127.0.0.1", user: "root", database: DATABASE });
  const now = Date.now() * 1000;
  const started = performance.now();
  for (let s = 0; s < SESSIONS; s += 100) {
    const sessions = [];
    for (let i = s; i < Math.min(SESSIONS, s + 100); i++) sessions.push([`s-${i}`, `file-${i}.xlsx`, "processing", TASKS, now - 3600e6, now]);
    await conn.query("insert into translation_sessions (session_id, filename, status, total_tasks, created_at, updated_at) values ?", [sessions]);
  }
  for (let s = 0; s < SESSIONS; s++) {
    const rows = [];
    for (let t = 0; t < TASKS; t++) {
      rows.push([`s-${s}`, `TASK_${String(t).padStart(4, "0")}`, `B_${t % 20}`, `Sheet${t % 4}`, t, "Text", `Source line ${t} of session ${s}`, STATUSES[t % 6], now - 3600e6, now]);
    }
    await conn.query(
      "insert into translation_tasks (session_id, task_id, batch_id, sheet_name, row_index, column_name, source_text, status, created_at, updated_at) values ?",
      [rows],
    );
  }
  await conn.query("analyze table translation_sessions, translation_tasks");
  await conn.end();
  return (performance.now() - started) / 1000;
}

function quantiles(samples) {
  const sorted = [...samples].sort((a, b) => a - b);
  const at = (q) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))];
  return { p50: at(0.5), p99: at(0.99) };
}

(async () => {
  const loadSeconds = await load();
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), "bench-reads-"));
  const child = spawn(process.execPath, [path.join(root, "dist/server/main.js")], {
    env: { ...process.env, PERSISTENCE_LISTEN: "127.0.0.1:0", PERSISTENCE_DATA_DIR: dataDir, PERSISTENCE_LOG_LEVEL: "info",
      PERSISTENCE_SQL_URL: `mysql://root@127.0.0.1:3306/${DATABASE}` },
    stdio: ["ignore", "pipe", "inherit"],
  });
  const url = await new Promise((resolve) =>
    readline.createInterface({ input: child.stdout }).on("line", (line) => {
      if (line.includes('"listening"')) resolve(JSON.parse(line).url);
    }),
  );
  const client = createClient(TranslationService, createGrpcTransport({ baseUrl: url }));
  const pick = () => `s-${Math.floor(Math.random() * SESSIONS)}`;
  for (let i = 0; i < 200; i++) await client.getSession({ sessionId: pick() }); // warm-up
  const timed = async (call) => {
    const samples = [];
    for (let i = 0; i < CALLS; i++) {
      const t = performance.now();
      await call();
      samples.push(performance.now() - t);
    }
    return quantiles(samples);
  };
  const getSession = await timed(() => client.getSession({ sessionId: pick() }));
  const listTasks = await timed(() => client.listSessionTasks({ sessionId: pick(), pageSize: 100, page: 1 + Math.floor(Math.random() * 10) }));
  child.kill("SIGTERM");
  await new Promise((r) => child.once("exit", r));
  fs.rmSync(dataDir, { recursive: true, force: true });
  const ms = (v) => `${v.toFixed(2)} ms`;
  console.log(`store: ${SESSIONS} sessions x ${TASKS} tasks = ${SESSIONS * TASKS} tasks on MariaDB (loaded in ${loadSeconds.toFixed(0)} s)`);
  console.log(`GetSession        (${CALLS} calls, gRPC, one at a time): p50 ${ms(getSession.p50)}  p99 ${ms(getSession.p99)}`);
  console.log(`ListSessionTasks  (${CALLS} calls, page_size 100):       p50 ${ms(listTasks.p50)}  p99 ${ms(listTasks.p99)}`);
})().catch((err) => {
  console.error(err);
  process.exit(1);
});
