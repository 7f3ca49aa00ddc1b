"use strict";
// Audit logs: WriteLogs acknowledgements beside Echo at the same rate, then N generated entries
// stored through the service, free-text + time-range searches over them, a full export (MB/s and the
// service's memory while it streams), and a verification of the whole chain before and after one
// row is altered in SQL.
const fs = require("node:fs");
const path = require("node:path");
const { toBinary, create } = require("@bufbuild/protobuf");
const { createClient } = require("@connectrpc/connect");
const { createGrpcTransport, Http2SessionManager } = require("@connectrpc/connect-node");
const { ROOT, startService } = require("../lib/service");
const { quantiles, round, sleep } = require("../lib/stats");
const { connectGrpc } = require("../lib/grpc-raw");
const { capacity, openLoop } = require("./latency");

const { AuditService, AuditResult, WriteLogsRequestSchema } = require(path.join(ROOT, "dist/gen/persistence/v1/audit_pb.js"));
const { SystemService, EchoRequestSchema } = require(path.join(ROOT, "dist/gen/persistence/v1/system_pb.js"));
const { Durability } = require(path.join(ROOT, "dist/gen/persistence/v1/common_pb.js"));
const { openServiceSql } = require(path.join(ROOT, "dist/server/schema.js"));

const ECHO = `/${SystemService.typeName}/Echo`;
const WRITE_LOGS = `/${AuditService.typeName}/WriteLogs`;
const DAY_MS = 86_400_000;
/** The generated entries' days: the last 30. */
const SPAN_DAYS = 30;
const WORDS_ZH = ["删除", "会话", "翻译", "文件", "上传", "用户", "登录", "导出", "任务", "失败", "成功", "管理员", "配置", "密钥", "权限"];
const WORDS_EN = ["session", "file", "upload", "export", "login", "quest", "dialogue", "import", "cleanup", "retry", "deadline", "spreadsheet", "worker", "batch", "token"];
const ACTIONS = ["session.create", "session.delete", "session.cleanup", "file.upload", "file.delete", "user.create", "user.delete", "user.login", "apikey.use", "config.change"];

/** A deterministic pseudo-random sequence (the same entries every run). */
function rng(seed) {
  let s = seed >>> 0;
  return () => ((s = (s * 1664525 + 1013904223) >>> 0) / 2 ** 32);
}

/** Entry `n`: 6 words (Chinese or English), an action, a result; it happened in the last 30 days, or at `now` when `live`. */
function generatedEntry(n, random, now, live = false) {
  const words = [];
  for (let i = 0; i < 6; i++) words.push(random() < 0.5 ? WORDS_ZH[Math.floor(random() * WORDS_ZH.length)] : WORDS_EN[Math.floor(random() * WORDS_EN.length)]);
  const spread = Math.floor(random() * SPAN_DAYS * DAY_MS);
  const occurred = live ? now : now - spread;
  return {
    action: ACTIONS[n % ACTIONS.length],
    result: random() < 0.9 ? AuditResult.SUCCESS : AuditResult.FAILURE,
    actor: { type: "user", id: `u-${Math.floor(random() * 1000)}`, name: "bench" },
    resource: { type: "session", id: `s-${n % 50_000}` },
    ip: `10.0.${Math.floor(random() * 256)}.${Math.floor(random() * 256)}`,
    userAgent: "bench/1.0",
    message: `${words.join(" ")} #${n}`,
    occurredAt: { seconds: BigInt(Math.floor(occurred / 1000)), nanos: (occurred % 1000) * 1_000_000 },
  };
}

function rssBytes(pid) {
  const status = fs.readFileSync(`/proc/${pid}/status`, "utf8");
  return Number(/VmRSS:\s+(\d+) kB/.exec(status)[1]) * 1024;
}

/** WriteLogs of `perCall` entries at LOGGED (the asynchronous default) beside Echo of the same size, same rate. */
async function writeAckVsEcho(service, { rate: designRate, seconds, perCall = 10 }) {
  const grpc = connectGrpc(service.url);
  try {
    const random = rng(7);
    const now = Date.now();
    const encoded = [];
    for (let i = 0; i < 200; i++) {
      // Written as they happen (live): the stored entries above cover the 30 days.
      const entries = Array.from({ length: perCall }, (_, j) => generatedEntry(i * perCall + j, random, now, true));
      encoded.push(grpc.frame(toBinary(WriteLogsRequestSchema, create(WriteLogsRequestSchema, { entries, durability: Durability.LOGGED }))));
    }
    const size = encoded[0].length - 5;
    const echoFrame = grpc.frame(toBinary(EchoRequestSchema, create(EchoRequestSchema, { payload: new Uint8Array(size - 4).fill(7) })));
    const echoCall = () => grpc.call(ECHO, echoFrame);
    const writeCall = (i) => grpc.call(WRITE_LOGS, encoded[i % encoded.length]);
    const echoCapacity = await capacity(echoCall);
    let w = 0;
    const writeCapacity = await capacity(() => writeCall(w++));
    const rate = Math.min(designRate, Math.max(10, Math.floor((0.6 * Math.min(echoCapacity, writeCapacity)) / 10) * 10));
    const echo = await openLoop(echoCall, { rate, seconds });
    const write = await openLoop(writeCall, { rate, seconds });
    return { request_bytes: size, entries_per_call: perCall, echo_capacity: echoCapacity, write_capacity: writeCapacity, rate, echo, write };
  } finally {
    grpc.close();
  }
}

/** Stores `count` generated entries through WriteLogs (4 callers × 1000 entries); waits until the search index holds them all. */
async function load(audit, count, expectIndexed) {
  const t0 = performance.now();
  const random = rng(42);
  const now = Date.now();
  let next = 0;
  const caller = async () => {
    while (next < count) {
      const from = next;
      next = Math.min(count, next + 1000);
      const entries = [];
      for (let n = from; n < next; n++) entries.push(generatedEntry(n, random, now));
      for (;;) {
        try {
          await audit.writeLogs({ entries, durability: Durability.LOGGED });
          break;
        } catch (err) {
          if (err.code !== 8) throw err; // RESOURCE_EXHAUSTED: the buffer is full, wait for the flush
          await sleep(100);
        }
      }
    }
  };
  await Promise.all([0, 1, 2, 3].map(caller));
  const acked = (performance.now() - t0) / 1000;
  // The projection into the search index runs behind the commits; the stats count what it holds.
  let indexed = 0;
  while (indexed < expectIndexed) {
    await sleep(1000);
    indexed = Number((await audit.getAuditStats({ action: "" })).total);
  }
  return { entries: count, ack_seconds: round(acked, 1), ack_rate: Math.round(count / acked), indexed_seconds: round((performance.now() - t0) / 1000, 1) };
}

/**
 * Writes `count` generated entries straight into the SQL record, chained as the service chains them
 * (the same hash function), in multi-row inserts: the fast way to a large store. The service's
 * projection then indexes them when it starts.
 */
async function seed(sqlUrl, count) {
  const { entryHash, GENESIS_HASH } = require(path.join(ROOT, "dist/server/audit/audit.chain.js"));
  const store = await openServiceSql(sqlUrl);
  const t0 = performance.now();
  try {
    const db = store.db;
    const random = rng(42);
    const now = Date.now();
    let prev = GENESIS_HASH;
    const perStatement = 1000;
    for (let from = 0; from < count; from += perStatement) {
      const rows = [];
      for (let n = from; n < Math.min(count, from + perStatement); n++) {
        const e = generatedEntry(n, random, now);
        const row = {
          id: `seed-${n}`,
          seq: n + 1,
          occurred_at: Number(e.occurredAt.seconds) * 1_000_000 + e.occurredAt.nanos / 1000,
          actor_type: e.actor.type,
          actor_id: e.actor.id,
          actor_name: e.actor.name,
          action: e.action,
          resource_type: e.resource.type,
          resource_id: e.resource.id,
          result: e.result === AuditResult.SUCCESS ? "success" : "failure",
          ip: e.ip,
          user_agent: e.userAgent,
          request_id: null,
          message: e.message,
          details: null,
          recorded_at: (now - (count - n)) * 1000,
          prev_hash: prev,
        };
        row.hash = entryHash(prev, row);
        prev = row.hash;
        rows.push(row);
      }
      await db.transaction().execute(async (trx) => {
        await trx.insertInto("audit_logs").values(rows).execute();
        const last = rows[rows.length - 1];
        await trx.updateTable("audit_chain").set({ seq: last.seq, hash: last.hash, recorded_at: last.recorded_at }).where("name", "=", "head").execute();
      });
    }
  } finally {
    await store.close();
  }
  return { entries: count, seconds: round((performance.now() - t0) / 1000, 1) };
}

/** Waits until the search index holds `count` entries (the projection catching up); seconds taken. */
async function indexed(audit, count) {
  const t0 = performance.now();
  for (;;) {
    const total = Number((await audit.getAuditStats({ action: "" })).total);
    if (total >= count) return round((performance.now() - t0) / 1000, 1);
    await sleep(2000);
  }
}

/** `calls` searches one at a time: a word (Chinese or English) within a random one-day window. */
async function searches(audit, calls) {
  const random = rng(9);
  const now = Date.now();
  const samples = [];
  const totals = [];
  for (let i = 0; i < calls; i++) {
    const words = i % 2 === 0 ? WORDS_ZH : WORDS_EN;
    const q = words[Math.floor(random() * words.length)];
    const from = now - Math.floor(random() * (SPAN_DAYS - 1) * DAY_MS) - DAY_MS;
    const t0 = performance.now();
    const page = await audit.searchLogs({
      q,
      from: { seconds: BigInt(Math.floor(from / 1000)), nanos: 0 },
      to: { seconds: BigInt(Math.floor((from + DAY_MS) / 1000)), nanos: 0 },
      pageSize: 50,
    });
    samples.push(performance.now() - t0);
    totals.push(Number(page.total));
  }
  return { calls, ...quantiles(samples, [0.5, 0.95, 0.99]), median_total: totals.sort((a, b) => a - b)[Math.floor(totals.length / 2)] };
}

/** The whole export over REST (NDJSON), read as fast as it comes; the service's RSS sampled meanwhile. */
async function exportAll(service) {
  const before = rssBytes(service.pid);
  let peak = before;
  const sampler = setInterval(() => (peak = Math.max(peak, rssBytes(service.pid))), 100);
  const t0 = performance.now();
  let bytes = 0;
  let lines = 0;
  try {
    const res = await fetch(`${service.url}/api/v1/audit/logs/export?format=ndjson`);
    for await (const chunk of res.body) {
      bytes += chunk.length;
      for (let i = 0; i < chunk.length; i++) if (chunk[i] === 10) lines++;
    }
  } finally {
    clearInterval(sampler);
  }
  const seconds = (performance.now() - t0) / 1000;
  return { lines, mb: round(bytes / 2 ** 20, 1), seconds: round(seconds, 1), mb_per_s: round(bytes / 2 ** 20 / seconds, 1), rss_before_mb: round(before / 2 ** 20, 1), rss_peak_mb: round(peak / 2 ** 20, 1) };
}

/** Verifies the chain, alters one row in SQL, verifies again (it must name that row), and puts the row back. */
async function verifyAndTamper(audit, sqlUrl, count) {
  const t0 = performance.now();
  const clean = await audit.verifyAuditChain({});
  const seconds = (performance.now() - t0) / 1000;
  const store = await openServiceSql(sqlUrl);
  try {
    const seq = Math.floor(count / 2);
    const { sql } = require("kysely");
    const row = (await sql`select id, message from audit_logs where seq = ${seq}`.execute(store.db)).rows[0];
    await sql`update audit_logs set message = ${"tampered"} where seq = ${seq}`.execute(store.db);
    const broken = await audit.verifyAuditChain({});
    await sql`update audit_logs set message = ${row.message} where seq = ${seq}`.execute(store.db);
    return {
      clean: { ok: clean.ok, checked: Number(clean.checked), seconds: round(seconds, 1) },
      altered: { seq, id: row.id, ok: broken.ok, first_broken: broken.firstBroken ? { seq: Number(broken.firstBroken.seq), id: broken.firstBroken.id, reason: broken.firstBroken.reason } : null },
      named: broken.firstBroken?.id === row.id,
    };
  } finally {
    await store.close();
  }
}

/** Every audit figure on one SQL store (`sqlUrl`): `entries` seeded in SQL, `loaded` more through WriteLogs. */
async function auditBench({ sqlUrl, entries, loaded, rate, seconds, searchCalls }) {
  const seeded = await seed(sqlUrl, entries);
  const service = await startService({ PERSISTENCE_SQL_URL: sqlUrl, PERSISTENCE_AUDIT_RETENTION_INTERVAL_MS: "0" });
  const session = new Http2SessionManager(service.url);
  const audit = createClient(AuditService, createGrpcTransport({ baseUrl: service.url, sessionManager: session, defaultTimeoutMs: 600_000 }));
  try {
    const projected_seconds = await indexed(audit, entries);
    const stored = { seeded, projected_seconds, through_service: await load(audit, loaded, entries + loaded) };
    const search = await searches(audit, searchCalls);
    const exported = await exportAll(service);
    const verify = await verifyAndTamper(audit, sqlUrl, entries);
    // Last: its writes add entries of their own.
    const latency = await writeAckVsEcho(service, { rate, seconds });
    return { stored, search, exported, verify, latency };
  } finally {
    session.abort();
    await service.stop();
  }
}

module.exports = { auditBench, seed, searches, writeAckVsEcho };
