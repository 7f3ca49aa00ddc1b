#!/usr/bin/env node
// The audit benchmarks alone: `npm run build && node bench/audit.js [--entries N] [--dialect sqlite|mysql]`
// (default: 1,000,000 entries seeded in SQL and 20,000 more through WriteLogs, on both). Prints the figures as JSON; `npm run bench` runs them on MariaDB at a smaller size.
"use strict";
const { auditBench } = require("./suites/audit");
const db = require("./lib/mariadb");
const { tempSqlite } = require("./suites/ingest");

const arg = (name, fallback) => {
  const i = process.argv.indexOf(`--${name}`);
  return i === -1 ? fallback : process.argv[i + 1];
};
const entries = Number(arg("entries", "1000000"));
const loaded = Number(arg("loaded", "20000"));
const dialects = arg("dialect", "sqlite,mysql").split(",");

(async () => {
  for (const dialect of dialects) {
    const started = Date.now();
    let sqlUrl;
    let cleanup;
    if (dialect === "mysql") {
      await db.freshDatabase("bench_audit");
      sqlUrl = db.url("bench_audit");
      cleanup = () => db.dropDatabase("bench_audit");
    } else {
      const sqlite = tempSqlite();
      sqlUrl = sqlite.url;
      cleanup = async () => sqlite.cleanup();
    }
    try {
      const result = await auditBench({ sqlUrl, entries, loaded, rate: 500, seconds: 20, searchCalls: 200 });
      // On MariaDB the search figures depend on the buffer pool holding the day tables (1M entries: ≈ 1.5 GB with the record).
      const mariadb = dialect === "mysql" ? await db.facts() : undefined;
      console.log(JSON.stringify({ dialect, duration_seconds: Math.round((Date.now() - started) / 1000), ...(mariadb ? { mariadb } : {}), ...result }, (_, v) => (typeof v === "bigint" ? Number(v) : v), 2));
    } finally {
      await cleanup();
    }
  }
})().catch((err) => {
  console.error(err);
  process.exit(1);
});
