#!/usr/bin/env node
// The audit search figures alone, against a running service that already holds entries (for example
// one left by `node bench/audit.js`'s seeding): `node bench/audit-search.js <url> [calls]` prints
// p50/p95/p99 of free-text + one-day-range searches, the same searches as bench/audit.js.
"use strict";
const path = require("node:path");
const { createClient } = require("@connectrpc/connect");
const { createGrpcTransport } = require("@connectrpc/connect-node");
const { ROOT } = require("./lib/service");
const { searches } = require("./suites/audit");

const { AuditService } = require(path.join(ROOT, "dist/gen/persistence/v1/audit_pb.js"));

(async () => {
  const [url, calls = "200"] = process.argv.slice(2);
  if (!url) throw new Error("usage: node bench/audit-search.js <service url> [calls]");
  const audit = createClient(AuditService, createGrpcTransport({ baseUrl: url }));
  console.log(JSON.stringify({ url, ...(await searches(audit, Number(calls))) }));
})().catch((err) => {
  console.error(err);
  process.exit(1);
});
