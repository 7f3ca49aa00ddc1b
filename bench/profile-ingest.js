#!/usr/bin/env node
// Profiling aid: one unique-key ingest through the service on MariaDB, nothing else. Run with
// BENCH_NODE_ARGS="--cpu-prof --cpu-prof-dir=<dir>" to get the service's CPU profile.
// Usage: npm run build && node bench/profile-ingest.js [records] [callers] [batch]
"use strict";
const db = require("./lib/mariadb");
const { uniqueRecords } = require("./lib/workloads");
const { throughService } = require("./suites/ingest");

(async () => {
  const [records = 50_000, callers = 8, batch = 500] = process.argv.slice(2).map(Number);
  await db.freshDatabase("bench_profile");
  const r = await throughService({ runs: [uniqueRecords(records, "p")], warmup: uniqueRecords(20_000, "pw"), callers, batchSize: batch, sqlUrl: db.url("bench_profile") });
  await db.dropDatabase("bench_profile");
  console.log(JSON.stringify(r));
})().catch((err) => {
  console.error(err);
  process.exit(1);
});
