#!/usr/bin/env node
// Scale-out: ingest through deploy/nginx with 1, 2 and 3 instances (ratios to one instance behind the
// same balancer, in the same run), CPU per 1,000 records per process, and the latency nginx adds to a
// call beside the same call made directly. Prints a table and writes bench/results/<time>-scale-out.json.
// Usage: npm run bench:scale-out [-- --quick] (needs nginx, MariaDB on 127.0.0.1:3306 and NATS on 4222).
"use strict";
const { execFileSync, spawn } = require("node:child_process");
const fs = require("node:fs");
const net = require("node:net");
const os = require("node:os");
const path = require("node:path");
const { create, toBinary } = require("@bufbuild/protobuf");
const db = require("./lib/mariadb");
const { connectGrpc } = require("./lib/grpc-raw");
const { ROOT, startService } = require("./lib/service");
const { quantiles, round } = require("./lib/stats");
const { slices, toTask, uniqueRecords } = require("./lib/workloads");

const { TranslationService, BatchUpsertTasksRequestSchema, FlushRequestSchema, FlushScope } = require(path.join(ROOT, "dist/gen/persistence/v1/translation_pb.js"));
const { SystemService, EchoRequestSchema } = require(path.join(ROOT, "dist/gen/persistence/v1/system_pb.js"));
const { Durability } = require(path.join(ROOT, "dist/gen/persistence/v1/common_pb.js"));

const QUICK = process.argv.includes("--quick");
const P = QUICK ? { records: 20_000, callers: 8, batch: 500, latencyCalls: 500 } : { records: 60_000, callers: 8, batch: 500, latencyCalls: 2000 };
const CONF = path.join(ROOT, "deploy", "nginx", "nginx.conf");
const PORTS = [18101, 18102, 18103];
const H2C = "http://127.0.0.1:18110";
const UPSERT = `/${TranslationService.typeName}/BatchUpsertTasks`;
const FLUSH = `/${TranslationService.typeName}/Flush`;
const ECHO = `/${SystemService.typeName}/Echo`;
const TICK_MS = 1000 / Number(execFileSync("getconf", ["CLK_TCK"], { encoding: "utf8" }).trim() || 100);

/** CPU time (user + system) a process has used so far, in ms; 0 once it is gone. */
function cpuMs(pid) {
  try {
    const fields = fs.readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1].split(" ");
    return (Number(fields[11]) + Number(fields[12])) * TICK_MS;
  } catch {
    return 0;
  }
}
const pidsOf = (name) => {
  try {
    return execFileSync("pgrep", ["-x", name], { encoding: "utf8" }).trim().split("\n").filter(Boolean).map(Number);
  } catch {
    return [];
  }
};

/** nginx with the deploy config, keeping only the first `n` instances in its upstreams. */
async function startNginx(n) {
  const prefix = fs.mkdtempSync(path.join(os.tmpdir(), "bench-nginx-"));
  fs.mkdirSync(path.join(prefix, "logs"));
  fs.mkdirSync(path.join(prefix, "temp"));
  const kept = new Set(PORTS.slice(0, n).map(String));
  const conf = fs
    .readFileSync(CONF, "utf8")
    .split("\n")
    .filter((line) => !/^\s*server 127\.0\.0\.1:(\d+)/.test(line) || kept.has(/:(\d+)/.exec(line)[1]))
    .join("\n");
  fs.writeFileSync(path.join(prefix, "nginx.conf"), conf);
  const child = spawn("nginx", ["-p", `${prefix}/`, "-c", path.join(prefix, "nginx.conf"), "-e", "logs/error.log", "-g", "daemon off;"], { stdio: "inherit" });
  for (let i = 0; i < 200 && !(await connects(18110)); i++) await new Promise((r) => setTimeout(r, 50));
  const exited = new Promise((resolve) => child.once("exit", resolve));
  return {
    pids: () => [child.pid, ...execFileSync("pgrep", ["-P", String(child.pid)], { encoding: "utf8" }).trim().split("\n").filter(Boolean).map(Number)],
    async stop() {
      child.kill("SIGTERM");
      await exited;
      fs.rmSync(prefix, { recursive: true, force: true });
    },
  };
}

function connects(port) {
  return new Promise((resolve) => {
    const s = net.connect(port, "127.0.0.1");
    s.once("connect", () => (s.destroy(), resolve(true)));
    s.once("error", () => resolve(false));
  });
}

/** `n` instances (one NATS prefix per run) behind nginx: records/s committed (ingest, then a cluster Flush) and CPU per 1,000 records. */
async function ingest(n, records) {
  const database = `bench_scale_${n}`;
  await db.freshDatabase(database);
  const prefix = `bench_scale_${process.pid}_${n}`;
  const env = (port) => ({ PERSISTENCE_SQL_URL: db.url(database), PERSISTENCE_LISTEN: `127.0.0.1:${port}`, PERSISTENCE_EVENTS_URL: "nats://127.0.0.1:4222", PERSISTENCE_EVENTS_PREFIX: prefix });
  // One after another: the first creates the schema.
  const services = [];
  for (const port of PORTS.slice(0, n)) services.push(await startService(env(port)));
  const nginx = await startNginx(n);
  const grpc = connectGrpc(H2C);
  try {
    const requests = slices(records, P.batch).map((slice) => ({
      key: slice[0].session_id,
      frame: grpc.frame(toBinary(BatchUpsertTasksRequestSchema, create(BatchUpsertTasksRequestSchema, { tasks: slice.map(toTask), durability: Durability.LOGGED }))),
    }));
    const clusterFlush = grpc.frame(toBinary(FlushRequestSchema, create(FlushRequestSchema, { scope: FlushScope.CLUSTER })));
    // Warm-up: each instance's JIT and connections, then every instance knows the others (cluster Flush answers).
    for (let i = 0; i < 30; i++) await grpc.call(ECHO, grpc.frame(toBinary(EchoRequestSchema, create(EchoRequestSchema, {}))));
    for (let i = 0; i < 50; i++) {
      try {
        await grpc.call(FLUSH, clusterFlush);
        break;
      } catch {
        await new Promise((r) => setTimeout(r, 200));
      }
    }
    const processes = { service: services.map((s) => s.pid), nginx: nginx.pids(), mariadb: pidsOf("mariadbd") };
    const before = Object.fromEntries(Object.entries(processes).map(([k, pids]) => [k, pids.reduce((sum, pid) => sum + cpuMs(pid), 0)]));
    const loadBefore = process.cpuUsage();
    const started = performance.now();
    let next = 0;
    await Promise.all(
      Array.from({ length: P.callers }, async () => {
        while (next < requests.length) {
          const r = requests[next++];
          await grpc.call(UPSERT, r.frame, { "x-routing-key": r.key });
        }
      }),
    );
    await grpc.call(FLUSH, clusterFlush);
    const seconds = (performance.now() - started) / 1000;
    const load = process.cpuUsage(loadBefore);
    const cpu = Object.fromEntries(Object.entries(processes).map(([k, pids]) => [k, pids.reduce((sum, pid) => sum + cpuMs(pid), 0) - before[k]]));
    cpu.load_generator = (load.user + load.system) / 1000;
    const per1000 = Object.fromEntries(Object.entries(cpu).map(([k, ms]) => [k, round(ms / (records.length / 1000), 2)]));
    const total = round(Object.values(per1000).reduce((a, b) => a + b, 0), 2);
    return { instances: n, records: records.length, seconds: round(seconds, 2), rate: round(records.length / seconds, 0), cpu_ms_per_1000: { ...per1000, total } };
  } finally {
    grpc.close();
    await nginx.stop();
    for (const s of services) await s.stop();
    await db.dropDatabase(database);
  }
}

/** One call after another, `calls` times each, alternating between a direct connection and one through the balancer: quantiles in ms. */
async function sideBySide(directUrl, balancerUrl, path, frame, calls) {
  const direct = connectGrpc(directUrl);
  const balanced = connectGrpc(balancerUrl);
  const headers = { "x-routing-key": "latency" };
  try {
    for (let i = 0; i < 100; i++) await Promise.all([direct.call(path, frame), balanced.call(path, frame, headers)]);
    const samples = { direct: [], balancer: [] };
    for (let i = 0; i < calls; i++) {
      let t = performance.now();
      await direct.call(path, frame);
      samples.direct.push(performance.now() - t);
      t = performance.now();
      await balanced.call(path, frame, headers);
      samples.balancer.push(performance.now() - t);
    }
    return { direct: quantiles(samples.direct, [0.5, 0.9, 0.99]), balancer: quantiles(samples.balancer, [0.5, 0.9, 0.99]) };
  } finally {
    direct.close();
    balanced.close();
  }
}

/** The latency nginx adds: Echo and a 100-record BatchUpsertTasks, direct to one instance and through the balancer to it (one instance behind it). */
async function latency() {
  await db.freshDatabase("bench_scale_latency");
  const service = await startService({ PERSISTENCE_SQL_URL: db.url("bench_scale_latency"), PERSISTENCE_LISTEN: `127.0.0.1:${PORTS[0]}` });
  const nginx = await startNginx(1);
  try {
    const direct = `http://127.0.0.1:${PORTS[0]}`;
    const framer = connectGrpc(direct);
    const echo = framer.frame(toBinary(EchoRequestSchema, create(EchoRequestSchema, { payload: new Uint8Array(1024).fill(7) })));
    const tasks = uniqueRecords(100, "lat").map(toTask);
    const writeFrame = framer.frame(toBinary(BatchUpsertTasksRequestSchema, create(BatchUpsertTasksRequestSchema, { tasks, durability: Durability.LOGGED })));
    framer.close();
    const out = {};
    for (const [name, rpc, frame] of [["echo_1k", ECHO, echo], ["write_100", UPSERT, writeFrame]]) {
      out[name] = await sideBySide(direct, H2C, rpc, frame, P.latencyCalls);
    }
    return out;
  } finally {
    await nginx.stop();
    await service.stop();
    await db.dropDatabase("bench_scale_latency");
  }
}

(async () => {
  const started = Date.now();
  console.log(`scale-out benchmark (${QUICK ? "quick" : "full"}): ${P.records} unique task records, ${P.callers} gRPC callers × ${P.batch}, LOGGED, through nginx (h2c, grpc_pass)`);
  const machine = { cpus: os.cpus().length, load_average_at_start: os.loadavg().map((v) => round(v, 2)), mariadb: await db.facts(), note: "nginx, the instances, MariaDB, NATS and the load generator share these cores" };
  console.log(`machine: ${machine.cpus} cores, load average ${machine.load_average_at_start.join(" ")}`);
  const records = uniqueRecords(P.records, "so");
  const runs = [];
  for (const n of [1, 2, 3]) {
    const r = await ingest(n, records.map((x, i) => ({ ...x, session_id: `${x.session_id}-${n}`, stamp_us: x.stamp_us + i })));
    runs.push(r);
    const ratio = round(r.rate / runs[0].rate, 2);
    console.log(`  ${n} instance(s): ${String(r.rate).padStart(7)} records/s committed (${ratio}× one instance) in ${r.seconds} s; CPU ms per 1,000 records: ${JSON.stringify(r.cpu_ms_per_1000)}`);
    r.ratio_to_one = ratio;
  }
  const lat = await latency();
  for (const [name, l] of Object.entries(lat)) {
    console.log(`  ${name}: direct p50 ${l.direct.p50} ms p99 ${l.direct.p99} ms; through nginx p50 ${l.balancer.p50} ms p99 ${l.balancer.p99} ms (adds ${round(l.balancer.p50 - l.direct.p50, 3)} ms at p50)`);
  }
  const result = { run: QUICK ? "quick" : "full", started_at: new Date(started).toISOString(), parameters: P, machine, ingest: runs, latency: lat, duration_seconds: Math.round((Date.now() - started) / 1000) };
  const dir = path.join(__dirname, "results");
  fs.mkdirSync(dir, { recursive: true });
  const file = path.join(dir, `${new Date(started).toISOString().replace(/[:.]/g, "-")}-scale-out-${result.run}.json`);
  fs.writeFileSync(file, `${JSON.stringify(result, null, 2)}\n`);
  console.log(`${path.relative(ROOT, file)} written in ${result.duration_seconds} s`);
})().catch((err) => {
  console.error(err);
  process.exit(1);
});
