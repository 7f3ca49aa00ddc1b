#!/usr/bin/env node
// The users benchmarks (the original design's phase-3 targets), each beside a baseline from the same
// run: ValidateSession at a fixed rate beside a raw ioredis GET at the same rate; the cache hit rate
// and the database reads it saves under a Zipf read mix with 10% writes; login throughput beside the
// bare scrypt hash rate of this machine. Prints a table and writes bench/results/<time>-users.json.
// Usage: npm run build && node bench/users.js [--quick]  (MariaDB on 3306, Redis on 6379).
"use strict";
const { randomBytes } = require("node:crypto");
const fs = require("node:fs");
const os = require("node:os");
const path = require("node:path");
const mysql = require("mysql2/promise");
const { Redis } = require("ioredis");
const { createClient } = require("@connectrpc/connect");
const { createGrpcTransport, Http2SessionManager } = require("@connectrpc/connect-node");
const db = require("./lib/mariadb");
const { ROOT, startService } = require("./lib/service");
const { quantiles, round } = require("./lib/stats");
const { openLoop } = require("./suites/latency");

const { UserService } = require(path.join(ROOT, "dist/gen/persistence/v1/users_pb.js"));
const { SystemService } = require(path.join(ROOT, "dist/gen/persistence/v1/system_pb.js"));
const { createPasswords, OWASP_COST } = require(path.join(ROOT, "dist/server/users/users.passwords.js"));
const { monthOf } = require(path.join(ROOT, "dist/server/users/users.service.js"));

const QUICK = process.argv.includes("--quick");
const P = QUICK
  ? { users: 10_000, loginSeconds: 5, validateRate: 500, validateSeconds: 5, mixOps: 10_000 }
  : { users: 10_000, loginSeconds: 15, validateRate: 1000, validateSeconds: 20, mixOps: 30_000 };
const REDIS_URL = process.env.BENCH_REDIS_URL ?? "redis://127.0.0.1:6379";
const DATABASE = "bench_users";
const PASSWORD = "bench-password-1";

const figures = [];
function figure(id, name, value, unit, baseline, target) {
  const met = target ? (target.op === "<" ? value < target.value : value >= target.value) : undefined;
  figures.push({ id, figure: name, value: round(value, 3), unit, baseline, target, met });
  console.log(`  ${name.padEnd(52)} ${String(round(value, 3)).padStart(10)} ${unit.padEnd(8)} ${baseline ? `${baseline.name}: ${round(baseline.value, 3)}` : ""} ${target ? `[target ${target.text}: ${met ? "met" : "NOT met"}]` : ""}`);
}

/** Ranks 0..n-1 drawn with probability ∝ 1/(rank+1)^s. */
function zipf(n, s = 1) {
  const cdf = new Float64Array(n);
  let sum = 0;
  for (let i = 0; i < n; i++) cdf[i] = sum += 1 / (i + 1) ** s;
  return () => {
    const x = Math.random() * sum;
    let lo = 0;
    let hi = n - 1;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (cdf[mid] < x) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  };
}

/** Sums a counter of the service's /metrics over the series whose labels include `labels`. */
async function metric(url, name, labels) {
  const text = await (await fetch(`${url}/metrics`)).text();
  let total = 0;
  for (const line of text.split("\n")) {
    if (!line.startsWith(`${name}{`)) continue;
    if (Object.entries(labels).every(([k, v]) => line.includes(`${k}="${v}"`))) total += Number(line.slice(line.lastIndexOf(" ") + 1));
  }
  return total;
}

/** Inserts `n` users straight into the table, all with one password hash (hashing 10k passwords would take minutes). */
async function seedUsers(n, hash) {
  const conn = await mysql.createConnection({ ...db.SERVER, database: DATABASE });
  const now = Date.now() * 1000;
  const ids = [];
  for (let start = 0; start < n; start += 1000) {
    const rows = [];
    for (let i = start; i < Math.min(n, start + 1000); i++) {
      const id = `00000000-0000-4000-8000-${String(i).padStart(12, "0")}`;
      ids.push(id);
      rows.push([id, `bench_${i}`, `bench_${i}`, `bench_${i}@example.com`, `bench_${i}@example.com`, `Bench ${i}`, "active", hash, 0, 1e9, monthOf(Date.now()), 0, 1e12, now, now]);
    }
    await conn.query(
      "insert into users (user_id, username, username_key, email, email_key, display_name, status, password_hash, translations_used, translations_limit, translations_period, storage_bytes_used, storage_bytes_limit, created_at, updated_at) values ?",
      [rows],
    );
  }
  await conn.end();
  return ids;
}

/** Runs `call` from `concurrency` callers until `seconds` pass (or `count` calls are done); latencies in ms. */
async function closedLoop(call, { concurrency, seconds = Infinity, count = Infinity }) {
  const samples = [];
  let started = 0;
  const deadline = performance.now() + seconds * 1000;
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (performance.now() < deadline && started < count) {
        const i = started++;
        const t = performance.now();
        await call(i);
        samples.push(performance.now() - t);
      }
    }),
  );
  return { calls: samples.length, rate: samples.length / ((performance.now() - t0) / 1000), ...quantiles(samples, [0.5, 0.99]) };
}

(async () => {
  const started = Date.now();
  const loadAtStart = os.loadavg().map((v) => round(v, 2));
  console.log(`users benchmarks (${QUICK ? "quick" : "full"}): ${os.cpus().length} × ${os.cpus()[0]?.model}, Node ${process.version}, load average ${loadAtStart.join(" ")}`);
  await db.freshDatabase(DATABASE);
  const keyPrefix = `bench${randomBytes(3).toString("hex")}:`;
  const service = await startService({
    PERSISTENCE_SQL_URL: db.url(DATABASE),
    PERSISTENCE_REDIS_URL: REDIS_URL,
    PERSISTENCE_USERS_KEY_PREFIX: keyPrefix,
    PERSISTENCE_USERS_LOGIN_ACCOUNT_BURST: "1000000",
    PERSISTENCE_USERS_LOGIN_ADDRESS_BURST: "1000000",
    PERSISTENCE_USERS_LOGIN_ADDRESS_PER_MINUTE: "1000000",
  });
  const sessionManager = new Http2SessionManager(service.url, { idleConnectionTimeoutMs: 5000 });
  const transport = createGrpcTransport({ baseUrl: service.url, sessionManager });
  const users = createClient(UserService, transport);
  const system = createClient(SystemService, transport);
  const redis = new Redis(REDIS_URL);
  const details = {};
  try {
    const passwords = createPasswords();
    const ids = await seedUsers(P.users, await passwords.hash(PASSWORD));
    console.log(`${ids.length} users seeded; scrypt N=2^${OWASP_COST.log2N} r=${OWASP_COST.r} p=${OWASP_COST.p}`);

    // Login throughput: the hash dominates. Baseline: scrypt alone in this process, on the same libuv pool size (4).
    console.log("\nlogin");
    const hashes = await closedLoop(() => passwords.verify(PASSWORD, undefined), { concurrency: 4, seconds: P.loginSeconds });
    const logins = [];
    const login = await closedLoop(async (i) => {
      const reply = await users.createSession({ username: `bench_${i % ids.length}`, password: PASSWORD });
      if (logins.length < 2000) logins.push(reply.sessionToken);
    }, { concurrency: 8, seconds: P.loginSeconds });
    details.login = { hashes, login };
    figure("scrypt_hashes_per_second", "scrypt hashes/s (this process, 4 at a time)", hashes.rate, "hash/s");
    figure("logins_per_second", "CreateSession (password) logins/s, 8 callers", login.rate, "login/s", { name: "bare scrypt", value: hashes.rate });
    figure("login_p50", "CreateSession p50", login.p50, "ms");

    // ValidateSession at a fixed rate, beside a raw GET of one session key at the same rate.
    // The rate: the original design's, or 60% of what this machine manages closed-loop if that is lower.
    const validateCapacity = await closedLoop((i) => users.validateSession({ sessionToken: logins[i % logins.length] }), { concurrency: 16, seconds: 3 });
    const rate = Math.max(20, Math.min(P.validateRate, Math.round(validateCapacity.rate * 0.6)));
    console.log(`\nvalidation: open loop at ${rate}/s for ${P.validateSeconds} s (closed-loop capacity ${Math.round(validateCapacity.rate)}/s)`);
    const sampleKey = (await redis.keys(`persistence:${keyPrefix}session:*`))[0];
    const qs = [0.5, 0.95, 0.99];
    const rawQ = await openLoop(() => redis.get(sampleKey), { rate, seconds: P.validateSeconds, qs });
    const validateQ = await openLoop((i) => users.validateSession({ sessionToken: logins[i % logins.length] }), { rate, seconds: P.validateSeconds, qs });
    // A bare RPC at the same rate: what the service's own path costs on this machine, with no store behind it.
    const echoQ = await openLoop(() => system.echo({ payload: new Uint8Array(64) }), { rate, seconds: P.validateSeconds, qs });
    details.validation = { rate, capacity: Math.round(validateCapacity.rate), raw_redis_get: rawQ, validate_session: validateQ, echo: echoQ };
    for (const q of ["p50", "p95", "p99"]) figure(`echo_${q}`, `SystemService.Echo ${q} (gRPC, same rate)`, echoQ[q], "ms");
    for (const q of ["p50", "p95", "p99"]) {
      figure(`redis_get_${q}`, `raw ioredis GET ${q}`, rawQ[q], "ms", undefined, q === "p95" ? { op: "<", value: 5, text: "< 5 ms" } : undefined);
    }
    for (const q of ["p50", "p95", "p99"]) {
      figure(`validate_session_${q}`, `ValidateSession ${q} (gRPC, end to end)`, validateQ[q], "ms", { name: "raw GET", value: rawQ[q] }, q === "p95" ? { op: "<", value: 10, text: "< 10 ms" } : undefined);
    }
    console.log(`  achieved: ValidateSession ${validateQ.rate_achieved}/s (errors ${JSON.stringify(validateQ.errors)}), GET ${rawQ.rate_achieved}/s`);

    // The cache under a Zipf mix over the users, 10% writes.
    console.log(`\ncache: ${P.mixOps} operations from cold, then ${P.mixOps} more; Zipf(1) over ${ids.length} users, 10% UpdateUser, 8 callers`);
    const pick = zipf(ids.length);
    const operation = async (i) => {
      const userId = ids[pick()];
      if (Math.random() < 0.1) {
        writes++;
        await users.updateUser({ userId, displayName: `Bench ${i}` });
      } else {
        reads++;
        await users.getUser({ userId });
      }
    };
    const labels = { cache: "users" };
    let reads = 0;
    let writes = 0;
    // From cold: every user's first read is a miss.
    const cold = { hits: await metric(service.url, "persistence_cache_hits_total", labels), misses: await metric(service.url, "persistence_cache_misses_total", labels) };
    await closedLoop(operation, { concurrency: 8, count: P.mixOps });
    const coldHits = (await metric(service.url, "persistence_cache_hits_total", labels)) - cold.hits;
    const coldMisses = (await metric(service.url, "persistence_cache_misses_total", labels)) - cold.misses;
    figure("cache_hit_rate_cold", "user cache hit rate, first pass from cold", (coldHits / (coldHits + coldMisses)) * 100, "%");
    // Then the same mix again, warm: the steady state.
    reads = 0;
    writes = 0;
    const before = { hits: await metric(service.url, "persistence_cache_hits_total", labels), misses: await metric(service.url, "persistence_cache_misses_total", labels) };
    const mix = await closedLoop(operation, { concurrency: 8, count: P.mixOps });
    const hits = (await metric(service.url, "persistence_cache_hits_total", labels)) - before.hits;
    const misses = (await metric(service.url, "persistence_cache_misses_total", labels)) - before.misses;
    const local = (await metric(service.url, "persistence_cache_hits_total", { cache: "users", tier: "local" }));
    details.cache = { reads, writes, hits, misses, local_hits_total: local, ops_per_second: mix.rate, p50: mix.p50, p99: mix.p99 };
    figure("cache_hit_rate", "user cache hit rate, warm (GetUser reads)", (hits / (hits + misses)) * 100, "%", undefined, { op: ">=", value: 80, text: "≥ 80%" });
    figure("db_reads_saved", "database reads saved (1 - SELECTs / reads)", (1 - misses / reads) * 100, "%", { name: "reads without a cache (one SELECT each)", value: reads });
    figure("mix_ops_per_second", "mix operations/s (8 callers)", mix.rate, "ops/s");
  } finally {
    sessionManager.abort();
    for await (const keys of redis.scanStream({ match: `persistence:${keyPrefix}*`, count: 500 })) if (keys.length) await redis.unlink(...keys);
    redis.disconnect();
    await service.stop();
    await db.dropDatabase(DATABASE);
  }
  const result = { run: QUICK ? "quick" : "full", suite: "users", started_at: new Date(started).toISOString(), duration_seconds: Math.round((Date.now() - started) / 1000), parameters: P, cpus: os.cpus().length, load_average_at_end: os.loadavg().map((v) => round(v, 2)), load_average_at_start: loadAtStart, figures, details };
  const dir = path.join(__dirname, "results");
  fs.mkdirSync(dir, { recursive: true });
  const file = path.join(dir, `${new Date(started).toISOString().replace(/[:.]/g, "-")}-users-${result.run}.json`);
  fs.writeFileSync(file, `${JSON.stringify(result, null, 2)}\n`);
  console.log(`\n${path.relative(ROOT, file)} written in ${result.duration_seconds} s`);
})().catch((err) => {
  console.error(err);
  process.exit(1);
});

