#!/usr/bin/env node
// Profiling aid: one ingest through the service on MariaDB, nothing else. Run with
// BENCH_NODE_ARGS="--cpu-prof --cpu-prof-dir=<dir>" to get the service's CPU profile.
// Usage: npm run build && node bench/profile-ingest.js [unique|translation] [records or sessions] [callers] [batch]
"use strict";
const db = require("./lib/mariadb");
const { uniqueRecords, translationRecords } = require("./lib/workloads");
const { throughService } = require("./suites/ingest");

(async () => {
  const [workload = "unique", ...rest] = process.argv.slice(2);
  // Each workload: how it makes records, its default size and its warm-up size (records, or sessions of 1,000 tasks).
  const workloads = { unique: [uniqueRecords, 50_000, 20_000], translation: [translationRecords, 15, 6] };
  if (!(workload in workloads)) throw new Error(`workload must be one of ${Object.keys(workloads).join(", ")}, got ${workload}`);
  const [make, defaultSize, warmupSize] = workloads[workload];
  const [size = defaultSize, callers = 8, batch = 500] = rest.map(Number);
  const records = make(size, "p");
  const warmup = make(warmupSize, "pw");
  await db.freshDatabase("bench_profile");
  const r = await throughService({ runs: [records], warmup, callers, batchSize: batch, sqlUrl: db.url("bench_profile") });
  await db.dropDatabase("bench_profile");
  console.log(JSON.stringify(r));
})().catch((err) => {
  console.error(err);
  process.exit(1);
});
