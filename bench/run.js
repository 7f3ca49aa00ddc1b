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
const { filesBench } = require("./suites/files");
const { auditBench } = require("./suites/audit");

const QUICK = process.argv.includes("--quick");
// Every ingest figure is measured twice (the spread is reported) on a service warmed with `warmup`
// records of the same workload first; the full run measures ≥ 100k records per figure.
const P = QUICK
  ? { unique: 20_000, warmupUnique: 10_000, translationSessions: 4, warmupSessions: 3, rawGrid: { batch: [1000], connections: [1, 4] }, perRecord: 3_000, latencyRate: 2000, latencySeconds: 4, readSessions: 100, readCalls: 300, durability: 10_000, sqlite: 10_000, auditEntries: 20_000 }
  : { unique: 100_000, warmupUnique: 40_000, translationSessions: 30, warmupSessions: 12, rawGrid: { batch: [500, 1000, 5000], connections: [1, 2, 4] }, perRecord: 30_000, latencyRate: 2000, latencySeconds: 20, readSessions: 1000, readCalls: 2000, durability: 50_000, sqlite: 50_000, auditEntries: 200_000 };

const figures = [];
/**
 * One row of the table: a figure (the median of its runs), its baseline from this run, the ratio and
 * the target. `runs` and `baselineRuns` are the values of each run: the spread is their range, and the
 * ratios run by run.
 */
function figure(id, name, runs, unit, baseline, target) {
  const value = median(runs);
  const ratio = baseline && baseline.value ? value / baseline.value : undefined;
  const ratios = baseline?.runs ? runs.map((v, i) => v / (baseline.runs[i] ?? baseline.value)) : undefined;
  const compared = target?.on === "ratio" ? ratio : value;
  const met = target && compared !== undefined ? (target.op === ">=" ? compared >= target.value : compared <= target.value) : undefined;
  const row = {
    id, figure: name, value: round(value, 2), runs: runs.map((v) => round(v, 2)), unit, baseline, ratio: ratio === undefined ? undefined : round(ratio, 3),
    ratio_runs: ratios?.map((r) => round(r, 3)), target, met,
  };
  figures.push(row);
  const r = ratio === undefined ? "" : `${round(ratio, 2)}×${ratios && ratios.length > 1 ? ` (${ratios.map((x) => round(x, 2)).join("/")})` : ""}`;
  const spread = runs.length > 1 ? ` [${runs.map((v) => round(v, 1)).join(", ")}]` : "";
  console.log(`  ${name.padEnd(58)} ${String(round(value, 2)).padStart(10)} ${unit.padEnd(10)}${spread} ${baseline ? `${baseline.name}: ${round(baseline.value, 2)}` : ""} ${r} ${target ? `[target ${target.text}: ${met ? "met" : "NOT met"}]` : ""}`);
  return row;
}

function median(values) {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
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

/** The best of the raw multi-row upsert grid (batch size × connections) on the first set, then that configuration on every set. */
async function bestRaw(sets, label, shape) {
  const grid = [];
  for (const batchSize of P.rawGrid.batch) {
    for (const connections of P.rawGrid.connections) {
      const r = await rawMysql({ records: sets[0], batchSize, connections, database: `bench_raw_${label}`, shape });
      grid.push({ batch_size: batchSize, connections, rate: round(r.rate, 0), result: r });
    }
  }
  const best = grid.reduce((a, b) => (b.rate > a.rate ? b : a));
  const runs = [best.result];
  for (const records of sets.slice(1)) runs.push(await rawMysql({ records, batchSize: best.batch_size, connections: best.connections, database: `bench_raw_${label}`, shape }));
  return { best: { batch_size: best.batch_size, connections: best.connections }, grid: grid.map(({ result, ...g }) => g), runs };
}

async function ingestWorkload(label, make, warmup, callers, batchSize) {
  const sets = [make(`${label[0]}1`), make(`${label[0]}2`)];
  console.log(`\n${label}: ${sets[0].length} records per run, ${sets.length} runs after a warm-up of ${warmup.length}, ${callers} gRPC callers × ${batchSize} records`);
  await db.freshDatabase(`bench_svc_${label}`);
  const service = await throughService({ runs: sets, warmup, callers, batchSize, sqlUrl: db.url(`bench_svc_${label}`) });
  await db.dropDatabase(`bench_svc_${label}`);
  const plain = await bestRaw(sets, `${label}_plain`, "plain");
  const same = await bestRaw(sets, `${label}_same`, "same");
  const perRecord = [];
  for (const records of sets) perRecord.push(await rawMysql({ records: records.slice(0, P.perRecord), batchSize: 1, connections: 8, database: `bench_single_${label}` }));

  const svcRates = service.runs.map((r) => r.rate);
  const rates = (runs) => runs.map((r) => r.rate);
  const ratioTarget = label === "unique" ? 0.7 : 0.8;
  figure(`ingest_${label}_vs_same_shape`, `${label}: records/s committed through the service`, svcRates, "records/s",
    { name: `same-shape raw multi-row (batch ${same.best.batch_size}, ${same.best.connections} conn)`, value: median(rates(same.runs)), runs: rates(same.runs) },
    { on: "ratio", op: ">=", value: ratioTarget, text: `≥ ${ratioTarget} × same-shape raw` });
  figure(`ingest_${label}_vs_raw`, `${label}: records/s committed through the service`, svcRates, "records/s",
    { name: `plain raw multi-row (batch ${plain.best.batch_size}, ${plain.best.connections} conn)`, value: median(rates(plain.runs)), runs: rates(plain.runs) });
  const perTarget = label === "unique" ? 2 : 5;
  figure(`ingest_${label}_vs_per_record`, `${label}: records/s committed through the service`, svcRates, "records/s",
    { name: "one upsert per record, 8 connections", value: median(rates(perRecord)), runs: rates(perRecord) }, { on: "ratio", op: ">=", value: perTarget, text: `≥ ${perTarget} × per-record` });
  const cpu = (runs, name) => runs.map((r) => r.cpu.ms_per_1000[name] ?? 0);
  const cpuTarget = label === "unique" ? 11 : 14;
  figure(`cpu_service_${label}`, `${label}: service CPU per 1,000 records`, cpu(service.runs, "service"), "ms", undefined, { on: "value", op: "<=", value: cpuTarget, text: `≤ ${cpuTarget} ms` });
  figure(`cpu_mariadb_${label}`, `${label}: MariaDB CPU per 1,000 records (service path)`, cpu(service.runs, "mariadb"), "ms",
    { name: "same-shape raw path's MariaDB", value: median(cpu(same.runs, "mariadb")), runs: cpu(same.runs, "mariadb") });
  figure(`cpu_load_${label}`, `${label}: load generator CPU per 1,000 records`, cpu(service.runs, "load"), "ms",
    { name: "same-shape raw path's client", value: median(cpu(same.runs, "load")), runs: cpu(same.runs, "load") });
  figure(`cpu_total_${label}`, `${label}: all processes' CPU per 1,000 records (service path)`, cpu(service.runs, "total"), "ms",
    { name: "same-shape raw path, all processes", value: median(cpu(same.runs, "total")), runs: cpu(same.runs, "total") });
  figure(`db_statements_${label}`, `${label}: statements (Questions) per 1,000 records`, service.runs.map((r) => r.statements_per_1000.Questions), "stmts",
    { name: "one upsert per record (measured Questions)", value: perRecord[0].statements_per_1000.Questions }, { on: "value", op: "<=", value: 2, text: "≤ 2" });
  console.log(`  load average during the runs: ${service.runs.map((r) => r.cpu.load_average).join(", ")}; cores used by the service path: ${service.runs.map((r) => r.cpu.cores_used).join(", ")}`);
  return { service, raw_plain: plain, raw_same_shape: same, per_record: perRecord };
}

(async () => {
  const started = Date.now();
  console.log(`Persistence Service benchmarks (${QUICK ? "quick" : "full"} run)`);
  const machine = await machineFacts();
  console.log(`machine: ${machine.cpus} × ${machine.cpu_model}, ${machine.memory_gb} GB, Node ${machine.node}, MariaDB ${machine.mariadb.version} ` +
    `(innodb_flush_log_at_trx_commit=${machine.mariadb.innodb_flush_log_at_trx_commit}, log_bin=${machine.mariadb.log_bin})`);
  const details = {};

  details.ingest_unique = await ingestWorkload("unique", (prefix) => uniqueRecords(P.unique, prefix), uniqueRecords(P.warmupUnique, "uw"), 8, 500);
  details.ingest_translation = await ingestWorkload("translation", (prefix) => translationRecords(P.translationSessions, prefix), translationRecords(P.warmupSessions, "tw"), 10, 100);

  console.log(`\nlatency: open loop at 60% of this machine's capacity (at most the design's ${P.latencyRate} req/s), ${P.latencySeconds} s per run, 100 records per write, each twice`);
  await db.freshDatabase("bench_latency");
  const latency = await writeAckVsEcho({ sqlUrl: db.url("bench_latency"), rate: P.latencyRate, seconds: P.latencySeconds });
  await db.dropDatabase("bench_latency");
  details.latency = latency;
  console.log(`  capacity (closed loop, 32 callers): echo ${latency.echo_capacity} req/s, writes ${latency.write_capacity} req/s; offered ${latency.rate} req/s; ` +
    `achieved: writes ${latency.write.map((w) => w.rate_achieved).join("/")} req/s (errors ${JSON.stringify(latency.write.map((w) => w.errors))}), echo ${latency.echo.map((e) => e.rate_achieved).join("/")} req/s`);
  figure("write_capacity", "write capacity (BatchUpsertTasks ×100, closed loop)", [latency.write_capacity], "req/s", { name: "Echo", value: latency.echo_capacity });
  figure("offered_rate", "offered rate of the latency runs (60% of capacity)", [latency.rate], "req/s");
  for (const q of ["p50", "p99", "p999"]) {
    figure(`write_ack_${q}`, `write ack ${q} (BatchUpsertTasks ×100, LOGGED)`, latency.write.map((w) => w[q]), "ms",
      { name: "Echo of the same size", value: median(latency.echo.map((e) => e[q])), runs: latency.echo.map((e) => e[q]) }, q === "p99" ? { on: "ratio", op: "<=", value: 2, text: "≤ 2 × echo" } : undefined);
  }
  const paused = (runs, key) => runs.map((r) => r.service_pauses[key]);
  figure("write_gc_ms_per_second", "service GC pause ms per second at the offered rate (writes)", paused(latency.write, "gc_ms_per_second"), "ms/s",
    { name: "during the echo runs", value: median(paused(latency.echo, "gc_ms_per_second")), runs: paused(latency.echo, "gc_ms_per_second") });
  figure("write_gc_over_10ms", "service GC pauses over 10 ms in a run (writes)", paused(latency.write, "gc_over_10ms"), "pauses",
    { name: "during the echo runs", value: median(paused(latency.echo, "gc_over_10ms")), runs: paused(latency.echo, "gc_over_10ms") });
  figure("write_loop_delay_max", "service event-loop delay max in a run (writes)", paused(latency.write, "loop_delay_max_ms"), "ms",
    { name: "during the echo runs", value: median(paused(latency.echo, "loop_delay_max_ms")), runs: paused(latency.echo, "loop_delay_max_ms") });
  figure("write_cpu_per_call", "service CPU per write call (×100 records) at the offered rate", latency.write.map((w) => w.service_cpu_ms_per_call), "ms",
    { name: "per echo call", value: median(latency.echo.map((e) => e.service_cpu_ms_per_call)), runs: latency.echo.map((e) => e.service_cpu_ms_per_call) });

  console.log(`\nreads: ${P.readSessions * 1000} tasks stored, ${P.readCalls} calls each, one at a time, twice (a raw gRPC caller; the Connect client for reference)`);
  const reads = await readLatency({ sessions: P.readSessions, calls: P.readCalls });
  details.reads = reads;
  figure("get_session_p50", "GetSession p50", reads.get_session.map((r) => r.p50), "ms");
  figure("get_session_p99", "GetSession p99", reads.get_session.map((r) => r.p99), "ms", undefined, { on: "value", op: "<=", value: 5, text: "< 5 ms" });
  figure("get_session_sql_p99", "GetSession's two queries alone (mysql2, 2 connections) p99", reads.get_session_sql_only.map((r) => r.p99), "ms");
  figure("get_session_handling_p99", "GetSession p99 inside the service (its access log's duration)", reads.get_session.map((r) => r.service_handling_p99), "ms");
  figure("echo_small_p99", "Echo (64 bytes) p99", reads.echo.map((r) => r.p99), "ms",
    { name: "bare node:http2 reply, same caller", value: median(reads.bare_http2_floor.map((r) => r.p99)), runs: reads.bare_http2_floor.map((r) => r.p99) });
  figure("echo_small_p50", "Echo (64 bytes) p50", reads.echo.map((r) => r.p50), "ms",
    { name: "bare node:http2 reply, same caller", value: median(reads.bare_http2_floor.map((r) => r.p50)), runs: reads.bare_http2_floor.map((r) => r.p50) });
  figure("list_session_tasks_p50", "ListSessionTasks p50", reads.list_session_tasks.map((r) => r.p50), "ms");
  figure("list_session_tasks_p99", "ListSessionTasks p99", reads.list_session_tasks.map((r) => r.p99), "ms", undefined, { on: "value", op: "<=", value: 20, text: "< 20 ms" });
  figure("get_session_client_p99", "GetSession p99 through the Connect client", reads.via_connect_client.get_session.map((r) => r.p99), "ms");
  figure("echo_small_client_p99", "Echo (64 bytes) p99 through the Connect client", reads.via_connect_client.echo.map((r) => r.p99), "ms");
  figure("list_session_tasks_client_p99", "ListSessionTasks p99 through the Connect client", reads.via_connect_client.list_session_tasks.map((r) => r.p99), "ms");

  console.log(`\ndurability: ${P.durability} unique records per run, 2 runs after a warm-up, 8 callers × 500`);
  const durability = {};
  // Each level on a fresh database. Then ACCEPTED and LOGGED again with the flushes held back until the
  // acks are in (no MariaDB writes during them): what LOGGED costs the write path by itself, without
  // the disk and cores the flushes share.
  const heldBack = { PERSISTENCE_FLUSH_INTERVAL_MS: "600000", PERSISTENCE_FLUSH_MAX_RECORDS: "1000000", PERSISTENCE_BUFFER_MAX_RECORDS: "1000000" };
  const durabilityRuns = [
    ...["ACCEPTED", "LOGGED", "COMMITTED"].map((level) => ({ level, key: level, prefix: "d", env: {} })),
    ...["ACCEPTED", "LOGGED"].map((level) => ({ level, key: `${level}_flush_held_back`, prefix: "h", env: heldBack })),
  ];
  for (const { level, key, prefix, env } of durabilityRuns) {
    await db.freshDatabase("bench_durability");
    const runs = [uniqueRecords(P.durability, `${prefix}${level}1`), uniqueRecords(P.durability, `${prefix}${level}2`)];
    durability[key] = await throughService({ runs, warmup: uniqueRecords(P.durability / 2, `${prefix}${level}w`), callers: 8, batchSize: 500, durability: level, sqlUrl: db.url("bench_durability"), env });
    await db.dropDatabase("bench_durability");
  }
  details.durability = durability;
  const ackRates = (level) => durability[level].runs.map((r) => r.ack_rate);
  const committedRates = (level) => durability[level].runs.map((r) => r.rate);
  figure("durability_logged_ack", "LOGGED: records/s acknowledged", ackRates("LOGGED"), "records/s",
    { name: "ACCEPTED (no log)", value: median(ackRates("ACCEPTED")), runs: ackRates("ACCEPTED") }, { on: "ratio", op: ">=", value: 0.9, text: "≥ 0.9 × ACCEPTED" });
  figure("durability_logged_ack_held_back", "LOGGED: records/s acknowledged, flushes held back", ackRates("LOGGED_flush_held_back"), "records/s",
    { name: "ACCEPTED, flushes held back", value: median(ackRates("ACCEPTED_flush_held_back")), runs: ackRates("ACCEPTED_flush_held_back") });
  figure("durability_committed_ack", "COMMITTED: records/s acknowledged", ackRates("COMMITTED"), "records/s",
    { name: "ACCEPTED (no log)", value: median(ackRates("ACCEPTED")), runs: ackRates("ACCEPTED") });
  figure("durability_logged_committed", "LOGGED: records/s committed (through Flush)", committedRates("LOGGED"), "records/s",
    { name: "ACCEPTED committed", value: median(committedRates("ACCEPTED")), runs: committedRates("ACCEPTED") });

  console.log(`\nembedded SQLite: ${P.sqlite} unique records per run, 2 runs after a warm-up, 8 callers × 500`);
  const sqlite = tempSqlite();
  try {
    const runs = [uniqueRecords(P.sqlite, "sq1"), uniqueRecords(P.sqlite, "sq2")];
    const svc = await throughService({ runs, warmup: uniqueRecords(P.sqlite / 2, "sqw"), callers: 8, batchSize: 500, sqlUrl: sqlite.url });
    const raw = [];
    for (const records of runs) raw.push(await rawSqlite({ records, batchSize: 1000 }));
    details.sqlite = { service: svc, raw };
    figure("ingest_sqlite", "SQLite: records/s committed through the service", svc.runs.map((r) => r.rate), "records/s",
      { name: "raw multi-row upsert (better-sqlite3, 1000/stmt)", value: median(raw.map((r) => r.rate)), runs: raw.map((r) => r.rate) });
    figure("cpu_service_sqlite", "SQLite: service CPU per 1,000 records", svc.runs.map((r) => r.cpu.ms_per_1000.service), "ms");
  } finally {
    sqlite.cleanup();
  }

  console.log("\nfiles: presign latency, upload throughput and memory against the S3-compatible server (Swift + s3api)");
  const files = await filesBench(QUICK ? { calls: 100, throughputBytes: 64 * 2 ** 20 } : {});
  details.files = files;
  figure("files_create_upload_url_p95", "CreateUploadUrl p95 (through the service, S3)", [files.create_upload_url_ms.p95], "ms",
    { name: "raw minio presignedPutObject p95", value: files.raw_presigned_put_ms.p95 }, { on: "value", op: "<=", value: 100, text: "< 100 ms" });
  figure("files_get_download_url_p95", "GetDownloadUrl p95 (through the service, S3)", [files.get_download_url_ms.p95], "ms",
    { name: "raw minio presignedGetObject p95", value: files.raw_presigned_get_ms.p95 }, { on: "value", op: "<=", value: 50, text: "< 50 ms" });
  figure("files_upload_throughput", "upload MB/s through the service (multipart/form-data)", [files.upload_mb_s.through_service], "MiB/s",
    { name: "direct minio putObject of the same stream", value: files.upload_mb_s.direct_put_object }, { on: "ratio", op: ">=", value: 0.8, text: "≥ 0.8 × direct" });
  figure("files_upload_throughput_8mib", "upload MB/s through the service (multipart/form-data)", [files.upload_mb_s.through_service], "MiB/s",
    { name: "direct minio putObject, 8 MiB parts as the service's store", value: files.upload_mb_s.direct_put_object_8mib_parts });
  figure("files_500mb_rss_growth", "500 MB upload: service peak RSS growth", [files.large_upload.growth / 2 ** 20], "MiB",
    undefined, { on: "value", op: "<=", value: 64, text: "< 64 MB" });

  console.log(`\naudit logs on MariaDB: ${P.auditEntries} entries (node bench/audit.js --entries 1000000 for the full size)`);
  await db.freshDatabase("bench_audit");
  const audit = await auditBench({ sqlUrl: db.url("bench_audit"), entries: P.auditEntries, loaded: 10_000, rate: 500, seconds: P.latencySeconds, searchCalls: 200 });
  await db.dropDatabase("bench_audit");
  details.audit = audit;
  figure("audit_write_ack_p99", "audit: WriteLogs ack p99 (10 entries, LOGGED)", [audit.latency.write.p99], "ms",
    { name: "Echo of the same size", value: audit.latency.echo.p99 }, { on: "value", op: "<=", value: 10, text: "< 10 ms" });
  figure("audit_search_p50", "audit: free text + one-day range search p50", [audit.search.p50], "ms");
  figure("audit_search_p95", "audit: free text + one-day range search p95", [audit.search.p95], "ms", undefined, { on: "value", op: "<=", value: 200, text: "< 200 ms" });
  figure("audit_export_mb_s", "audit: NDJSON export", [audit.exported.mb_per_s], "MB/s");
  figure("audit_export_rss_growth", "audit: service RSS growth while exporting", [audit.exported.rss_peak_mb - audit.exported.rss_before_mb], "MB");

  machine.load_average_at_end = os.loadavg().map((v) => round(v, 2));
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
