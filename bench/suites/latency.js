"use strict";
// Latency at a fixed arrival rate (open loop): every request has a scheduled send time, and its
// latency runs from that time, so a stall delays the requests behind it and shows in the tail
// instead of slowing the load down (no coordinated omission).
const path = require("node:path");
const { toBinary, create } = require("@bufbuild/protobuf");
const { createClient } = require("@connectrpc/connect");
const { createGrpcTransport, Http2SessionManager } = require("@connectrpc/connect-node");
const { ROOT, startService } = require("../lib/service");
const { quantiles, sleep } = require("../lib/stats");
const { toTask, uniqueRecords } = require("../lib/workloads");

const { TranslationService, BatchUpsertTasksRequestSchema } = require(path.join(ROOT, "dist/gen/persistence/v1/translation_pb.js"));
const { SystemService } = require(path.join(ROOT, "dist/gen/persistence/v1/system_pb.js"));

/**
 * Calls `call(i)` at `rate` per second for `seconds` (after a warm-up of `warmupSeconds`). Returns
 * latency quantiles in ms, the rate achieved and the errors.
 */
async function openLoop(call, { rate, seconds, warmupSeconds = 2 }) {
  const samples = [];
  const errors = {};
  const total = Math.round(rate * (seconds + warmupSeconds));
  const warmup = Math.round(rate * warmupSeconds);
  const interval = 1000 / rate;
  const start = performance.now() + 5;
  let sent = 0;
  const pending = [];
  while (sent < total) {
    const now = performance.now();
    // Send everything due by now, each timed from its own scheduled instant.
    while (sent < total && start + sent * interval <= now) {
      const i = sent++;
      const scheduled = start + i * interval;
      pending.push(
        call(i).then(
          () => {
            if (i >= warmup) samples.push(performance.now() - scheduled);
          },
          (err) => {
            if (i >= warmup) errors[err.code ?? "unknown"] = (errors[err.code ?? "unknown"] ?? 0) + 1;
          },
        ),
      );
    }
    await sleep(Math.max(0, Math.min(1, start + sent * interval - performance.now())));
  }
  const measuredStart = start + warmup * interval;
  await Promise.all(pending);
  // Achieved: calls answered over the time from the first measured send to the last answer.
  const elapsed = (performance.now() - measuredStart) / 1000;
  return { ...quantiles(samples), rate_target: rate, rate_achieved: Math.round(samples.length / elapsed), calls: samples.length, errors };
}

/** Closed-loop capacity of `call`: calls per second from `concurrency` callers for `seconds`. */
async function capacity(call, { concurrency = 32, seconds = 2 } = {}) {
  let n = 0;
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (performance.now() - t0 < seconds * 1000) {
        await call();
        n++;
      }
    }),
  );
  return Math.round(n / ((performance.now() - t0) / 1000));
}

/**
 * Write acknowledgements (BatchUpsertTasks of `recordsPerCall` records at LOGGED, over a working set
 * of 10,000 tasks so the buffer coalesces) beside Echo calls of the same size, at the same rate,
 * on the same service.
 */
async function writeAckVsEcho({ sqlUrl, rate: designRate, seconds, recordsPerCall = 100 }) {
  const service = await startService({ PERSISTENCE_SQL_URL: sqlUrl });
  const session = new Http2SessionManager(service.url);
  const transport = createGrpcTransport({ baseUrl: service.url, sessionManager: session });
  const translation = createClient(TranslationService, transport);
  const system = createClient(SystemService, transport);
  try {
    const workingSet = uniqueRecords(10_000, "lat").map(toTask);
    const batch = (i) => {
      const from = (i * recordsPerCall) % workingSet.length;
      return workingSet.slice(from, from + recordsPerCall);
    };
    const size = toBinary(BatchUpsertTasksRequestSchema, create(BatchUpsertTasksRequestSchema, { tasks: batch(0) })).length;
    const payload = new Uint8Array(size).fill(7);
    // An open loop above what the machine can serve measures only the queue. The rate is the design's,
    // or 60% of the lower of the echo's and the writes' closed-loop capacity on this machine (load
    // generator, service and MariaDB share the cores), whichever is less.
    const echoCapacity = await capacity(() => system.echo({ payload }));
    let w = 0;
    const writeCapacity = await capacity(() => translation.batchUpsertTasks({ tasks: batch(w++) }));
    await translation.flush({});
    const rate = Math.min(designRate, Math.max(10, Math.floor((0.6 * Math.min(echoCapacity, writeCapacity)) / 10) * 10));
    const echo = await openLoop(() => system.echo({ payload }), { rate, seconds });
    const write = await openLoop((i) => translation.batchUpsertTasks({ tasks: batch(i) }), { rate, seconds });
    await translation.flush({});
    return { request_bytes: size, rate_design: designRate, echo_capacity: echoCapacity, write_capacity: writeCapacity, rate, echo, write };
  } finally {
    session.abort();
    await service.stop();
  }
}

module.exports = { openLoop, writeAckVsEcho };
