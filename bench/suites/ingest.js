"use strict";
// Ingest: task records/s through the service (gRPC callers) and through raw SQL, with MariaDB's
// own statement counters; the same on the embedded SQLite default.
const fs = require("node:fs");
const os = require("node:os");
const path = require("node:path");
const mysql = require("mysql2/promise");
const { createClient } = require("@connectrpc/connect");
const { createGrpcTransport, Http2SessionManager } = require("@connectrpc/connect-node");
const { ROOT, startService } = require("../lib/service");
const db = require("../lib/mariadb");
const { toTask, slices, rawUpserts } = require("../lib/workloads");

const { create, toBinary } = require("@bufbuild/protobuf");
const { connectGrpc } = require("../lib/grpc-raw");
const { startCpu } = require("../lib/cpu");
const { TranslationService, BatchUpsertTasksRequestSchema } = require(path.join(ROOT, "dist/gen/persistence/v1/translation_pb.js"));
const { Durability } = require(path.join(ROOT, "dist/gen/persistence/v1/common_pb.js"));

const UPSERT_TASKS = `/${TranslationService.typeName}/BatchUpsertTasks`;

/**
 * One service process: `warmup` records first (not measured: the JIT and the pools settle), then each
 * set of `runs` in turn, sent in batches of `batchSize` from `callers` concurrent gRPC callers and
 * followed by Flush. Returns, per run, the rate acknowledged (all replies in) and committed (Flush
 * returned), CPU ms per 1,000 records of the service, MariaDB and the load generator, and on MariaDB the
 * server's statement counters per 1,000 records.
 */
async function throughService({ runs, warmup = [], callers, batchSize, durability = "LOGGED", sqlUrl, env = {} }) {
  const service = await startService({ PERSISTENCE_SQL_URL: sqlUrl, ...env });
  const session = new Http2SessionManager(service.url);
  const client = createClient(TranslationService, createGrpcTransport({ baseUrl: service.url, sessionManager: session }));
  const grpc = connectGrpc(service.url);
  const mysqlTarget = sqlUrl.startsWith("mysql:");
  const mariadb = mysqlTarget ? await db.pid() : undefined;
  // Requests are encoded before the clock starts, so the load generator spends its CPU on sending.
  const encode = (records) =>
    slices(records, batchSize).map((slice) =>
      grpc.frame(toBinary(BatchUpsertTasksRequestSchema, create(BatchUpsertTasksRequestSchema, { tasks: slice.map(toTask), durability: Durability[durability] }))),
    );
  const send = async (requests) => {
    let next = 0;
    await Promise.all(
      Array.from({ length: callers }, async () => {
        while (next < requests.length) await grpc.call(UPSERT_TASKS, requests[next++]);
      }),
    );
  };
  try {
    await client.flush({});
    if (warmup.length > 0) {
      await send(encode(warmup));
      await client.flush({});
    }
    const out = [];
    for (const records of runs) {
      const requests = encode(records);
      const before = mysqlTarget ? await db.counters() : undefined;
      const cpu = startCpu({ service: service.pid, mariadb });
      const started = performance.now();
      await send(requests);
      const acked = performance.now();
      await client.flush({});
      const committed = performance.now();
      const used = cpu.stop(records.length);
      const after = mysqlTarget ? await db.counters() : undefined;
      out.push({
        records: records.length,
        ack_rate: records.length / ((acked - started) / 1000),
        rate: records.length / ((committed - started) / 1000),
        seconds: (committed - started) / 1000,
        cpu: used,
        statements_per_1000: before ? db.per1000(before, after, records.length) : undefined,
      });
    }
    return { warmup_records: warmup.length, runs: out };
  } finally {
    grpc.close();
    session.abort();
    await service.stop();
  }
}

/**
 * Raw upserts of `records` with mysql2: statements of `batchSize` rows spread over `connections`;
 * `shape` "plain" (the ceiling) or "same" (the service's statement shape, see workloads.rawUpserts).
 */
async function rawMysql({ records, batchSize, connections, database, shape = "plain" }) {
  await db.freshDatabase(database);
  const mariadb = await db.pid();
  const conns = await Promise.all(Array.from({ length: connections }, () => mysql.createConnection({ ...db.SERVER, database })));
  try {
    const statements = rawUpserts(records, batchSize, shape);
    const before = await db.counters();
    const cpu = startCpu({ mariadb });
    const started = performance.now();
    let next = 0;
    await Promise.all(
      conns.map(async (conn) => {
        while (next < statements.length) {
          const s = statements[next++];
          await conn.query(s.sql, s.params);
        }
      }),
    );
    const seconds = (performance.now() - started) / 1000;
    const used = cpu.stop(records.length);
    const after = await db.counters();
    return { records: records.length, rate: records.length / seconds, seconds, cpu: used, statements_per_1000: db.per1000(before, after, records.length) };
  } finally {
    await Promise.all(conns.map((c) => c.end()));
    await db.dropDatabase(database);
  }
}

/** Raw multi-row upserts of `records` into a SQLite file with better-sqlite3, one transaction per statement. */
async function rawSqlite({ records, batchSize }) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "bench-sqlite-raw-"));
  const file = path.join(dir, "raw.db");
  const { openServiceSql } = require(path.join(ROOT, "dist/server/schema.js"));
  await (await openServiceSql(`sqlite:${file}`)).close();
  const Database = require("better-sqlite3");
  const sqlite = new Database(file);
  sqlite.pragma("journal_mode = WAL");
  sqlite.pragma("synchronous = NORMAL");
  try {
    const statements = rawUpserts(records, batchSize).map((s) => ({
      ...s,
      sql: s.sql.replace(/on duplicate key update (.*)$/, (_, sets) => `on conflict (session_id, task_id) do update set ${sets.replace(/values\((\w+)\)/g, "excluded.$1")}`),
    }));
    const cache = new Map();
    const started = performance.now();
    for (const s of statements) {
      let stmt = cache.get(s.sql);
      if (!stmt) cache.set(s.sql, (stmt = sqlite.prepare(s.sql)));
      sqlite.transaction(() => stmt.run(s.params))();
    }
    const seconds = (performance.now() - started) / 1000;
    return { records: records.length, rate: records.length / seconds, seconds };
  } finally {
    sqlite.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

/** A fresh SQLite URL in a temporary directory (removed by the returned cleanup). */
function tempSqlite() {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "bench-sqlite-"));
  return { url: `sqlite:${path.join(dir, "bench.db")}`, cleanup: () => fs.rmSync(dir, { recursive: true, force: true }) };
}

module.exports = { throughService, rawMysql, rawSqlite, tempSqlite };
