#!/usr/bin/env node
// Quick ingest comparison on the local MariaDB (127.0.0.1:3306): task records/s committed through the
// service over gRPC, beside raw multi-row upserts of the same rows with mysql2, and MariaDB's own
// statement counters per 1,000 records. Usage: npm run build && node bench/ingest.js [records]
"use strict";
const { spawn } = require("node:child_process");
const os = require("node:os");
const path = require("node:path");
const fs = require("node:fs");
const readline = require("node:readline");
const mysql = require("mysql2/promise");
const { createClient } = require("@connectrpc/connect");
const { createGrpcTransport } = require("@connectrpc/connect-node");

const root = path.resolve(__dirname, "..");
const { TranslationService, TaskStatus } = require(path.join(root, "dist/gen/persistence/v1/translation_pb.js"));
const { openSqlBackend } = require(path.join(root, "dist/server/backends/sql/sql-backend.js"));

const N = Number(process.argv[2] ?? 50_000);
const CALLERS = 8;
const BATCH = 500;
const server = { host: "127.0.0.1", port: 3306, user: "root" };

const row = (i) => ({
  session_id: `bench-${Math.floor(i / 1000)}`,
  task_id: `TASK_${String(i % 1000).padStart(4, "0")}`,
  batch_id: "BATCH_TR_NORMAL_001",
  sheet_name: "Dialogue",
  row_index: i % 1000,
  column_name: "Text",
  source_text: `Hello, adventurer number ${i}! Your quest awaits beyond the northern gate.`,
  status: "pending",
});

async function statusCounters(conn) {
  const [rows] = await conn.query("show global status where Variable_name in ('Com_insert','Com_update','Com_commit','Com_begin','Questions')");
  return Object.fromEntries(rows.map((r) => [r.Variable_name, Number(r.Value)]));
}

async function freshDatabase(name) {
  const conn = await mysql.createConnection(server);
  await conn.query(`drop database if exists \`${name}\``);
  await conn.end();
  const backend = await openSqlBackend(`mysql://root@127.0.0.1:3306/${name}`);
  await backend.close();
}

async function raw() {
  await freshDatabase("bench_raw");
  const conn = await mysql.createConnection({ ...server, database: "bench_raw" });
  const cols = Object.keys(row(0));
  const started = performance.now();
  for (let start = 0; start < N; start += 1000) {
    const rows = [];
    for (let i = start; i < Math.min(N, start + 1000); i++) rows.push(cols.map((c) => row(i)[c]));
    await conn.query(
      `insert into translation_tasks (${cols.join(",")}, created_at, updated_at) values ${rows.map((r) => `(${r.map(() => "?").join(",")},1,1)`).join(",")}
       on duplicate key update ${cols.slice(2).map((c) => `${c} = values(${c})`).join(", ")}, updated_at = values(updated_at)`,
      rows.flat(),
    );
  }
  const seconds = (performance.now() - started) / 1000;
  await conn.end();
  return N / seconds;
}

async function throughService() {
  await freshDatabase("bench_service");
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), "bench-ingest-"));
  const child = spawn(process.execPath, [...(process.env.BENCH_NODE_ARGS ?? "").split(" ").filter(Boolean), path.join(root, "dist/server/main.js")], {
    env: { ...process.env, PERSISTENCE_LISTEN: "127.0.0.1:0", PERSISTENCE_DATA_DIR: dataDir, PERSISTENCE_LOG_LEVEL: "info",
      PERSISTENCE_SQL_URL: "mysql://root@127.0.0.1:3306/bench_service" },
    stdio: ["ignore", "pipe", "inherit"],
  });
  const url = await new Promise((resolve) =>
    readline.createInterface({ input: child.stdout }).on("line", (line) => {
      if (line.includes('"listening"')) resolve(JSON.parse(line).url);
    }),
  );
  const client = createClient(TranslationService, createGrpcTransport({ baseUrl: url }));
  const conn = await mysql.createConnection(server);
  const before = await statusCounters(conn);
  const started = performance.now();
  let next = 0;
  await Promise.all(
    Array.from({ length: CALLERS }, async () => {
      while (next < N) {
        const start = next;
        next += BATCH;
        const tasks = [];
        for (let i = start; i < Math.min(N, start + BATCH); i++) {
          const r = row(i);
          tasks.push({ sessionId: r.session_id, taskId: r.task_id, batchId: r.batch_id, sheetName: r.sheet_name, rowIndex: r.row_index,
            columnName: r.column_name, sourceText: r.source_text, status: TaskStatus.PENDING });
        }
        await client.batchUpsertTasks({ tasks });
      }
    }),
  );
  await client.flush({});
  const seconds = (performance.now() - started) / 1000;
  const after = await statusCounters(conn);
  await conn.end();
  child.kill("SIGTERM");
  await new Promise((r) => child.once("exit", r));
  fs.rmSync(dataDir, { recursive: true, force: true });
  const per1000 = (k) => ((after[k] - before[k]) / N) * 1000;
  return { rate: N / seconds, insertsPer1000: per1000("Com_insert"), questionsPer1000: per1000("Questions") };
}

(async () => {
  const rawRate = await raw();
  const service = await throughService();
  console.log(`records: ${N}, callers: ${CALLERS} x ${BATCH} over gRPC, durability LOGGED`);
  console.log(`raw multi-row upsert (mysql2, 1 connection, 1000/statement): ${Math.round(rawRate)} records/s`);
  console.log(`through the service, committed:                              ${Math.round(service.rate)} records/s (${(service.rate / rawRate).toFixed(2)} x raw)`);
  console.log(`MariaDB Com_insert per 1,000 records: ${service.insertsPer1000.toFixed(2)}; all statements (Questions) per 1,000: ${service.questionsPer1000.toFixed(2)}`);
})().catch((err) => {
  console.error(err);
  process.exit(1);
});
