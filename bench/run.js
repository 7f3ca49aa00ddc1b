#!/usr/bin/env node
// The benchmarks of DESIGN §6, each beside its baseline measured in the same run on the same
// machine. Prints a table and writes every figure to bench/results/<time>.json.
// Usage: npm run bench [-- --quick] (needs MariaDB on 127.0.0.1:3306, root, no password).
"use strict";
const fs = require("node:fs");
const os = require("node:os");
const path = require("node:path");
const db = require("./lib/mariadb");
const { ROOT } = require("./lib/service");
const { round } = require("./lib/stats");
const { uniqueRecords, translationRecords } = require("./lib/workloads");
const { throughService, rawMysql, rawSqlite, tempSqlite } = require("./suites/ingest");
const { writeAckVsEcho } = require("./suites/latency");
const { readLatency } = require("./suites/reads");
const { auditBench } = require("./suites/audit");

const QUICK = process.argv.includes("--quick");
const P = QUICK
  ? { unique: 20_000, translationSessions: 5, rawGrid: { batch: [1000], connections: [1, 4] }, perRecord: 5_000, latencyRate: 2000, latencySeconds: 5, readSessions: 100, readCalls: 500, durability: 20_000, sqlite: 20_000, auditEntries: 20_000 }
  : { unique: 100_000, translationSessions: 20, rawGrid: { batch: [500, 1000, 5000], connections: [1, 2, 4] }, perRecord: 30_000, latencyRate: 2000, latencySeconds: 20, readSessions: 1000, readCalls: 2000, durability: 50_000, sqlite: 50_000, auditEntries: 200_000 };

const figures = [];
/** One row of the table: a figure, its baseline from this run, the ratio and the target. */
function figure(id, name, value, unit, baseline, target) {
  const ratio = baseline && baseline.value ? value / baseline.value : undefined;
  const compared = target?.on === "ratio" ? ratio : value;
  const met = target && compared !== undefined ? (target.op === ">=" ? compared >= target.value : compared <= target.value) : undefined;
  const row = { id, figure: name, value: round(value, 2), unit, baseline, ratio: ratio === undefined ? undefined : round(ratio, 3), target, met };
  figures.push(row);
  const r = ratio === undefined ? "" : `${round(ratio, 2)}×`;
  console.log(`  ${name.padEnd(58)} ${String(round(value, 2)).padStart(10)} ${unit.padEnd(10)} ${baseline ? `${baseline.name}: ${round(baseline.value, 2)}` : ""} ${r} ${target ? `[target ${target.text}: ${met ? "met" : "NOT met"}]` : ""}`);
  return row;
}

async function machineFacts() {
  return {
    cpus: os.cpus().length,
    cpu_model: os.cpus()[0]?.model,
    memory_gb: round(os.totalmem() / 2 ** 30, 1),
    load_average_at_start: os.loadavg().map((v) => round(v, 2)),
    node: process.version,
    platform: `${os.type()} ${os.release()}`,
    mariadb: await db.facts(),
    note: "load generator, service and MariaDB share these cores",
  };
}

/** The best of the raw multi-row upsert grid (batch size × connections). */
async function bestRaw(records, label) {
  const runs = [];
  for (const batchSize of P.rawGrid.batch) {
    for (const connections of P.rawGrid.connections) {
      const r = await rawMysql({ records, batchSize, connections, database: `bench_raw_${label}` });
      runs.push({ batch_size: batchSize, connections, rate: round(r.rate, 0) });
    }
  }
  const best = runs.reduce((a, b) => (b.rate > a.rate ? b : a));
  return { best, runs };
}

async function ingestWorkload(label, records, callers, batchSize) {
  console.log(`\n${label}: ${records.length} records, ${callers} gRPC callers × ${batchSize} records`);
  await db.freshDatabase(`bench_svc_${label}`);
  const service = await throughService({ records, callers, batchSize, sqlUrl: db.url(`bench_svc_${label}`) });
  await db.dropDatabase(`bench_svc_${label}`);
  const raw = await bestRaw(records, label);
  const perRecordRecords = records.slice(0, P.perRecord);
  const perRecord = await rawMysql({ records: perRecordRecords, batchSize: 1, connections: 8, database: `bench_single_${label}` });
  const target07 = { on: "ratio", op: ">=", value: 0.7, text: "≥ 0.7 × raw" };
  const perTarget = label === "unique" ? 2 : 5;
  figure(`ingest_${label}_vs_raw`, `${label}: records/s committed through the service`, service.rate, "records/s",
    { name: `best raw multi-row (batch ${raw.best.batch_size}, ${raw.best.connections} conn)`, value: raw.best.rate }, target07);
  figure(`ingest_${label}_vs_per_record`, `${label}: records/s committed through the service`, service.rate, "records/s",
    { name: "one upsert per record, 8 connections", value: perRecord.rate }, { on: "ratio", op: ">=", value: perTarget, text: `≥ ${perTarget} × per-record` });
  const statements = service.statements_per_1000.Questions;
  figure(`db_statements_${label}`, `${label}: statements (Questions) per 1,000 records`, statements, "stmts",
    { name: "one upsert per record (measured Questions)", value: perRecord.statements_per_1000.Questions }, { on: "value", op: "<=", value: 2, text: "≤ 2" });
  return { service, raw, per_record: { ...perRecord, records: perRecordRecords.length } };
}

(async () => {
  const started = Date.now();
  console.log(`Persistence Service benchmarks (${QUICK ? "quick" : "full"} run)`);
  const machine = await machineFacts();
  console.log(`machine: ${machine.cpus} × ${machine.cpu_model}, ${machine.memory_gb} GB, Node ${machine.node}, MariaDB ${machine.mariadb.version} ` +
    `(innodb_flush_log_at_trx_commit=${machine.mariadb.innodb_flush_log_at_trx_commit}, log_bin=${machine.mariadb.log_bin})`);
  const details = {};

  details.ingest_unique = await ingestWorkload("unique", uniqueRecords(P.unique), 8, 500);
  details.ingest_translation = await ingestWorkload("translation", translationRecords(P.translationSessions), 10, 100);

  console.log(`\nlatency: open loop (design rate ${P.latencyRate} req/s, capped at 60% of this machine's capacity) for ${P.latencySeconds} s, 100 records per write`);
  await db.freshDatabase("bench_latency");
  const latency = await writeAckVsEcho({ sqlUrl: db.url("bench_latency"), rate: P.latencyRate, seconds: P.latencySeconds });
  await db.dropDatabase("bench_latency");
  details.latency = latency;
  for (const q of ["p50", "p99", "p999"]) {
    figure(`write_ack_${q}`, `write ack ${q} (BatchUpsertTasks ×100, LOGGED)`, latency.write[q], "ms",
      { name: "Echo of the same size", value: latency.echo[q] }, q === "p99" ? { on: "ratio", op: "<=", value: 2, text: "≤ 2 × echo" } : undefined);
  }
  console.log(`  capacity: echo ${latency.echo_capacity} req/s, writes ${latency.write_capacity} req/s; offered ${latency.rate} req/s; achieved: writes ${latency.write.rate_achieved} req/s (errors ${JSON.stringify(latency.write.errors)}), echo ${latency.echo.rate_achieved} req/s`);

  console.log(`\nreads: ${P.readSessions * 1000} tasks stored, ${P.readCalls} calls each, one at a time`);
  const reads = await readLatency({ sessions: P.readSessions, calls: P.readCalls });
  details.reads = reads;
  figure("get_session_p50", "GetSession p50", reads.get_session.p50, "ms");
  figure("get_session_p99", "GetSession p99", reads.get_session.p99, "ms", undefined, { on: "value", op: "<=", value: 5, text: "< 5 ms" });
  figure("list_session_tasks_p50", "ListSessionTasks p50", reads.list_session_tasks.p50, "ms");
  figure("list_session_tasks_p99", "ListSessionTasks p99", reads.list_session_tasks.p99, "ms", undefined, { on: "value", op: "<=", value: 20, text: "< 20 ms" });

  console.log(`\ndurability: ${P.durability} unique records, 8 callers × 500`);
  const durability = {};
  for (const level of ["ACCEPTED", "LOGGED", "COMMITTED"]) {
    await db.freshDatabase("bench_durability");
    durability[level] = await throughService({ records: uniqueRecords(P.durability, `d${level}`), callers: 8, batchSize: 500, durability: level, sqlUrl: db.url("bench_durability") });
    await db.dropDatabase("bench_durability");
  }
  details.durability = durability;
  figure("durability_logged_ack", "LOGGED: records/s acknowledged", durability.LOGGED.ack_rate, "records/s",
    { name: "ACCEPTED (no log)", value: durability.ACCEPTED.ack_rate }, { on: "ratio", op: ">=", value: 0.8, text: "≥ 0.8 × ACCEPTED" });
  figure("durability_committed_ack", "COMMITTED: records/s acknowledged", durability.COMMITTED.ack_rate, "records/s",
    { name: "ACCEPTED (no log)", value: durability.ACCEPTED.ack_rate });
  figure("durability_logged_committed", "LOGGED: records/s committed (through Flush)", durability.LOGGED.rate, "records/s",
    { name: "ACCEPTED committed", value: durability.ACCEPTED.rate });

  console.log(`\nembedded SQLite: ${P.sqlite} unique records, 8 callers × 500`);
  const sqlite = tempSqlite();
  try {
    const records = uniqueRecords(P.sqlite, "sq");
    const svc = await throughService({ records, callers: 8, batchSize: 500, sqlUrl: sqlite.url });
    const raw = await rawSqlite({ records, batchSize: 1000 });
    details.sqlite = { service: svc, raw };
    figure("ingest_sqlite", "SQLite: records/s committed through the service", svc.rate, "records/s",
      { name: "raw multi-row upsert (better-sqlite3, 1000/stmt)", value: raw.rate });
  } finally {
    sqlite.cleanup();
  }

  console.log(`\naudit logs on MariaDB: ${P.auditEntries} entries (node bench/audit.js --entries 1000000 for the full size)`);
  await db.freshDatabase("bench_audit");
  const audit = await auditBench({ sqlUrl: db.url("bench_audit"), entries: P.auditEntries, loaded: 10_000, rate: 500, seconds: P.latencySeconds, searchCalls: 200 });
  await db.dropDatabase("bench_audit");
  details.audit = audit;
  figure("audit_write_ack_p99", "audit: WriteLogs ack p99 (10 entries, LOGGED)", audit.latency.write.p99, "ms",
    { name: "Echo of the same size", value: audit.latency.echo.p99 }, { on: "value", op: "<=", value: 10, text: "< 10 ms" });
  figure("audit_search_p50", "audit: free text + one-day range search p50", audit.search.p50, "ms");
  figure("audit_search_p95", "audit: free text + one-day range search p95", audit.search.p95, "ms", undefined, { on: "value", op: "<=", value: 200, text: "< 200 ms" });
  figure("audit_export_mb_s", "audit: NDJSON export", audit.exported.mb_per_s, "MB/s");
  figure("audit_export_rss_growth", "audit: service RSS growth while exporting", audit.exported.rss_peak_mb - audit.exported.rss_before_mb, "MB");

  const result = {
    run: QUICK ? "quick" : "full",
    started_at: new Date(started).toISOString(),
    duration_seconds: Math.round((Date.now() - started) / 1000),
    git_commit: readHead(),
    parameters: P,
    machine,
    figures,
    details,
  };
  const dir = path.join(__dirname, "results");
  fs.mkdirSync(dir, { recursive: true });
  const file = path.join(dir, `${new Date(started).toISOString().replace(/[:.]/g, "-")}-${result.run}.json`);
  fs.writeFileSync(file, `${JSON.stringify(result, (_, v) => (typeof v === "bigint" ? Number(v) : v), 2)}\n`);
  const met = figures.filter((f) => f.met === true).length;
  const missed = figures.filter((f) => f.met === false).map((f) => f.id);
  console.log(`\ntargets met: ${met}; not met: ${missed.length ? missed.join(", ") : "none"}`);
  console.log(`${path.relative(ROOT, file)} written in ${result.duration_seconds} s`);
})().catch((err) => {
  console.error(err);
  process.exit(1);
});

function readHead() {
  try {
    return require("node:child_process").execFileSync("git", ["rev-parse", "HEAD"], { cwd: ROOT, encoding: "utf8" }).trim();
  } catch {
    return undefined;
  }
}
