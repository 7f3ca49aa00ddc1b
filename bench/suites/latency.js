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
const { SystemService, EchoRequestSchema } = require(path.join(ROOT, "dist/gen/persistence/v1/system_pb.js"));
const { LOOP_SAMPLE_MS } = require(path.join(ROOT, "dist/server/rpc/interceptors/metrics.js"));
const { connectGrpc } = require("../lib/grpc-raw");
const { startCpu } = require("../lib/cpu");

const ECHO = `/${SystemService.typeName}/Echo`;
const UPSERT_TASKS = `/${TranslationService.typeName}/BatchUpsertTasks`;

/**
 * Calls `call(i)` at `rate` per second for `seconds` (after a warm-up of `warmupSeconds`). Returns
 * latency quantiles in ms (`qs`, default p50, p99, p99.9), the rate achieved and the errors.
 */
async function openLoop(call, { rate, seconds, warmupSeconds = 2, qs }) {
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
  return { ...quantiles(samples, qs), rate_target: rate, rate_achieved: Math.round(samples.length / elapsed), calls: samples.length, errors };
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
async function writeAckVsEcho({ sqlUrl, rate: designRate, seconds, recordsPerCall = 100, repeats = 2 }) {
  const service = await startService({ PERSISTENCE_SQL_URL: sqlUrl });
  const session = new Http2SessionManager(service.url);
  const translation = createClient(TranslationService, createGrpcTransport({ baseUrl: service.url, sessionManager: session }));
  // Requests are encoded beforehand (the load generator's CPU goes to sending): writes cycle over a
  // working set of 10,000 tasks; the echo carries a payload of the same size.
  const grpc = connectGrpc(service.url);
  try {
    const workingSet = uniqueRecords(10_000, "lat").map(toTask);
    const encoded = [];
    for (let from = 0; from < workingSet.length; from += recordsPerCall) {
      encoded.push(grpc.frame(toBinary(BatchUpsertTasksRequestSchema, create(BatchUpsertTasksRequestSchema, { tasks: workingSet.slice(from, from + recordsPerCall) }))));
    }
    const size = encoded[0].length - 5;
    const echoFrame = grpc.frame(toBinary(EchoRequestSchema, create(EchoRequestSchema, { payload: new Uint8Array(size - 4).fill(7) })));
    const echoCall = () => grpc.call(ECHO, echoFrame);
    const writeCall = (i) => grpc.call(UPSERT_TASKS, encoded[i % encoded.length]);
    // An open loop above what the machine can serve measures only the queue. The rate is the design's,
    // or 60% of the lower of the echo's and the writes' closed-loop capacity on this machine (load
    // generator, service and MariaDB share the cores), whichever is less.
    const echoCapacity = await capacity(echoCall);
    let w = 0;
    const writeCapacity = await capacity(() => writeCall(w++));
    await translation.flush({});
    const rate = Math.min(designRate, Math.max(10, Math.floor((0.6 * Math.min(echoCapacity, writeCapacity)) / 10) * 10));
    // Each figure twice, echo and writes in turn, with the service's CPU per call beside it, and its
    // garbage collection and event-loop delay over the run (from its /metrics, whose loop delay
    // figures start afresh at every scrape).
    const measured = async (call) => {
      const before = await service.metrics();
      const cpu = startCpu({ service: service.pid });
      const result = await openLoop(call, { rate, seconds });
      // Every call sent counts, the open loop's own warm-up included.
      const used = cpu.stop(Math.round(rate * (seconds + 2)));
      const after = await service.metrics();
      return { ...result, service_cpu_ms_per_call: Math.round(used.ms_per_1000.service * 100) / 100000, service_pauses: pauses(before, after, seconds + 2) };
    };
    const echo = [];
    const write = [];
    for (let i = 0; i < repeats; i++) {
      echo.push(await measured(echoCall));
      write.push(await measured(writeCall));
    }
    await translation.flush({});
    return { request_bytes: size, rate_design: designRate, echo_capacity: echoCapacity, write_capacity: writeCapacity, rate, echo, write };
  } finally {
    grpc.close();
    session.abort();
    await service.stop();
  }
}

/** The service's GC pauses (per second, over 10 ms, total ms per second) and event-loop delay between two scrapes of its metrics. */
function pauses(before, after, seconds) {
  const delta = (name) => (after.get(name) ?? 0) - (before.get(name) ?? 0);
  let count = 0;
  let sum = 0;
  const over10ms = {};
  for (const kind of ["minor", "major", "incremental", "weakcb"]) {
    const n = delta(`nodejs_gc_duration_seconds_count{kind="${kind}"}`);
    count += n;
    sum += delta(`nodejs_gc_duration_seconds_sum{kind="${kind}"}`);
    const long = n - delta(`nodejs_gc_duration_seconds_bucket{le="0.01",kind="${kind}"}`);
    if (long > 0) over10ms[kind] = long;
  }
  // prom-client's loop figures are the intervals of its sampling timer: the delay is the excess.
  const ms = (name) => Math.max(0, Math.round(((after.get(name) ?? 0) * 1000 - LOOP_SAMPLE_MS) * 10) / 10);
  return {
    gc_per_second: Math.round((count / seconds) * 10) / 10,
    gc_over_10ms: Object.values(over10ms).reduce((a, b) => a + b, 0),
    gc_over_10ms_by_kind: over10ms,
    gc_ms_per_second: Math.round((sum * 1000 * 10) / seconds) / 10,
    loop_delay_p99_ms: ms("nodejs_eventloop_lag_p99_seconds"),
    loop_delay_max_ms: ms("nodejs_eventloop_lag_max_seconds"),
  };
}

module.exports = { capacity, openLoop, writeAckVsEcho };
