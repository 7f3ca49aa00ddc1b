#!/usr/bin/env node
// What moving request decoding to worker threads would cost the event loop: one 100-record
// BatchUpsertTasks request decoded and validated on the main thread (as the service does), beside
// the structured clone that would bring the same patches back from a worker (postMessage uses V8's
// ValueSerializer, as v8.serialize/deserialize do). CPU µs per request, twice.
// Usage: npm run build && node bench/worker-handoff.js
"use strict";
const path = require("node:path");
const v8 = require("node:v8");
const { toBinary, create } = require("@bufbuild/protobuf");
const { ROOT } = require("./lib/service");
const { toTask, uniqueRecords } = require("./lib/workloads");

const { TaskSchema } = require(path.join(ROOT, "dist/gen/persistence/v1/translation_pb.js"));
const { TASK_WIRE } = require(path.join(ROOT, "dist/server/translation/translation.fields.js"));

const CALLS = 20_000;
const records = uniqueRecords(100, "h").map((r) => toBinary(TaskSchema, create(TaskSchema, toTask(r))));

function cpuPerCall(label, fn) {
  for (let i = 0; i < 2000; i++) fn();
  const before = process.cpuUsage();
  for (let i = 0; i < CALLS; i++) fn();
  const used = process.cpuUsage(before);
  console.log(`  ${label.padEnd(52)} ${((used.user + used.system) / CALLS).toFixed(1).padStart(7)} µs per request`);
}

const decode = () => TASK_WIRE.decode(records, Date.now() * 1000, 10_000);
const { patches } = decode();
const cloned = v8.serialize(patches);
console.log(`one request of ${records.length} task records (${records.reduce((n, r) => n + r.length, 0)} bytes; its patches clone to ${cloned.length} bytes)`);
for (let run = 1; run <= 2; run++) {
  console.log(`run ${run}:`);
  cpuPerCall("decode + validate on the main thread (the service today)", decode);
  cpuPerCall("worker side: serialize the patches", () => v8.serialize(patches));
  cpuPerCall("main thread: deserialize the patches from a worker", () => v8.deserialize(cloned));
}
