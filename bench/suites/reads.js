"use strict";
// Read latency over a large store: sessions of 1,000 tasks loaded straight into MariaDB, then
// GetSession and ListSessionTasks (page_size 100, random pages) one call at a time over gRPC.
// The timed calls go through a minimal HTTP/2 caller with requests encoded beforehand, so the
// figures are the service's; the same calls through the Connect client are kept beside them, as a
// caller using the SDK sees them (that client's own event-loop stalls add ≈ 2-3 ms to a p99).
const path = require("node:path");
const { toBinary, create } = require("@bufbuild/protobuf");
const mysql = require("mysql2/promise");
const { createClient } = require("@connectrpc/connect");
const { createGrpcTransport, Http2SessionManager } = require("@connectrpc/connect-node");
const { ROOT, startService, startBareGrpc } = require("../lib/service");
const db = require("../lib/mariadb");
const { quantiles } = require("../lib/stats");

const { TranslationService, GetSessionRequestSchema, ListSessionTasksRequestSchema } = require(path.join(ROOT, "dist/gen/persistence/v1/translation_pb.js"));
const { SystemService, EchoRequestSchema } = require(path.join(ROOT, "dist/gen/persistence/v1/system_pb.js"));
const { connectGrpc } = require("../lib/grpc-raw");

const GET_SESSION = `/${TranslationService.typeName}/GetSession`;
const LIST_SESSION_TASKS = `/${TranslationService.typeName}/ListSessionTasks`;
const ECHO = `/${SystemService.typeName}/Echo`;

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
  const service = await startService({ PERSISTENCE_SQL_URL: db.url(database) }, { keepCallLog: true });
  const session = new Http2SessionManager(service.url);
  const client = createClient(TranslationService, createGrpcTransport({ baseUrl: service.url, sessionManager: session }));
  const system = createClient(SystemService, createGrpcTransport({ baseUrl: service.url, sessionManager: session }));
  try {
    const pick = () => `s-${Math.floor(Math.random() * sessions)}`;
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
    // Requests for the raw caller, encoded before the clock starts.
    const raw = connectGrpc(service.url);
    const encoded = (schema, init) => raw.frame(toBinary(schema, create(schema, init)));
    const getSessionBodies = Array.from({ length: calls }, () => encoded(GetSessionRequestSchema, { sessionId: pick() }));
    const listBodies = Array.from({ length: calls }, () => encoded(ListSessionTasksRequestSchema, { sessionId: pick(), pageSize: 100, page: 1 + Math.floor(Math.random() * 10) }));
    const echoBody = encoded(EchoRequestSchema, { payload: echoPayload });
    // Warm-up: every call timed below runs a few thousand times first, on both callers.
    for (let i = 0; i < 2000; i++) await raw.call(GET_SESSION, getSessionBodies[i % calls]);
    for (let i = 0; i < 500; i++) await raw.call(LIST_SESSION_TASKS, listBodies[i % calls]);
    for (let i = 0; i < 1000; i++) await raw.call(ECHO, echoBody);
    for (let i = 0; i < 500; i++) {
      await client.getSession({ sessionId: pick() });
      await system.echo({ payload: echoPayload });
    }
    // The machine's floor for one call: the same caller against a bare node:http2 server.
    const bare = await startBareGrpc();
    const bareCaller = connectGrpc(bare.url);
    const floor = [];
    // A raw run also reports the service's own handling time of its calls (the access log's
    // duration_ms): what remains of the caller's figure is the connection, the scheduler and the caller.
    const rawTimed = async (route, bodies, method) => {
      let i = 0;
      service.clearCallLog();
      const seen = await timed(() => raw.call(route, bodies[i++ % bodies.length]));
      await new Promise((resolve) => setTimeout(resolve, 200));
      const handling = quantiles(service.handlingTimes(method), [0.5, 0.99]);
      return { ...seen, service_handling_p50: handling.p50, service_handling_p99: handling.p99 };
    };
    // Each figure twice, in turn.
    const getSession = [];
    const listSessionTasks = [];
    const getSessionSql = [];
    const echo = [];
    const viaClient = { get_session: [], echo: [], list_session_tasks: [] };
    try {
      for (let i = 0; i < 2; i++) {
        for (let w = 0; w < 500; w++) await bareCaller.call(ECHO, echoBody);
        floor.push(await timed(() => bareCaller.call(ECHO, echoBody)));
        getSession.push(await rawTimed(GET_SESSION, getSessionBodies, "GetSession"));
        getSessionSql.push(await timed(sqlOnly));
        echo.push(await rawTimed(ECHO, [echoBody], "Echo"));
        listSessionTasks.push(await rawTimed(LIST_SESSION_TASKS, listBodies, "ListSessionTasks"));
        viaClient.get_session.push(await timed(() => client.getSession({ sessionId: pick() })));
        viaClient.echo.push(await timed(() => system.echo({ payload: echoPayload })));
        viaClient.list_session_tasks.push(await timed(() => client.listSessionTasks({ sessionId: pick(), pageSize: 100, page: 1 + Math.floor(Math.random() * 10) })));
      }
    } finally {
      raw.close();
      bareCaller.close();
      await bare.stop();
      await sqlPool.end();
    }
    return { tasks_stored: sessions * TASKS, load_seconds: Math.round(loadSeconds), calls, get_session: getSession, get_session_sql_only: getSessionSql, echo, bare_http2_floor: floor, list_session_tasks: listSessionTasks, via_connect_client: viaClient };
  } finally {
    session.abort();
    await service.stop();
    await db.dropDatabase(database);
  }
}

module.exports = { readLatency };
