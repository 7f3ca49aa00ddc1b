import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { sql } from "kysely";
import { createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { createPersistenceClient } from "../../clients/src/index";
import { Durability } from "../../gen/persistence/v1/common_pb";
import { TaskStatus, TranslationService, WatchEventType } from "../../gen/persistence/v1/translation_pb";
import { openServiceSql } from "../../server/schema";
import { NGINX_PORTS, nginxAvailable, startBalancer, type Balancer } from "../support/balancer";
import { startServiceProcess, type ServiceProcess } from "../support/service-process";
import { createSqlTarget, type SqlTarget } from "../support/sql-targets";
import { eventually, within } from "../support/wait";

/**
 * Three service processes behind deploy/nginx/nginx.conf (as it is), over one MariaDB, Redis (shared
 * rate limits) and NATS (the events role): what a client sees through the balancer while instances
 * die, restart and drain.
 */

type Json = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

const RUN = `${process.pid}${randomBytes(3).toString("hex")}`;
/** The test's own calls (checks, cluster Flush). */
const LOAD_KEY = `operator-${randomBytes(12).toString("hex")}`;
/** One key per client of the load, each with its own share of the rate limit. */
const CLIENT_KEYS = Array.from({ length: 10 }, (_, c) => `client${c}-${randomBytes(12).toString("hex")}`);
const LIMITED_KEY = `limited-${randomBytes(12).toString("hex")}`;
/** Per API key, shared by every instance through Redis. */
const RATE = { perSecond: 20, burst: 100 };
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** What a client that retries per RetryInfo (Retry-After), and on a balancer that has no instance for it, had to absorb. */
interface Absorbed {
  readonly byStatus: Record<string, number>;
}

/** A REST call through `base` that retries 429/502/503/504 and connection failures as the service and nginx ask, for at most 60 s. */
async function rest(base: string, method: string, route: string, body?: unknown, options: { key?: string; routingKey?: string; absorbed?: Absorbed } = {}): Promise<{ status: number; json: Json }> {
  const deadline = Date.now() + 60_000;
  for (;;) {
    let status = 0;
    let text = "";
    let retryAfter = 0.2;
    try {
      const res = await fetch(`${base}${route}`, {
        method,
        headers: {
          authorization: `Bearer ${options.key ?? LOAD_KEY}`,
          ...(body === undefined ? {} : { "content-type": "application/json" }),
          ...(options.routingKey ? { "x-routing-key": options.routingKey } : {}),
        },
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
        signal: AbortSignal.timeout(20_000),
      });
      status = res.status;
      text = await res.text();
      retryAfter = Number(res.headers.get("retry-after") ?? 0.2);
    } catch {
      status = 0;
    }
    if (![0, 429, 502, 503, 504].includes(status) || Date.now() > deadline) return { status, json: text ? (JSON.parse(text) as Json) : {} };
    if (options.absorbed) options.absorbed.byStatus[status] = (options.absorbed.byStatus[status] ?? 0) + 1;
    await sleep(Math.min(retryAfter * 1000, 2000));
  }
}

/** The translation backend's pattern: a session, its tasks in batches going pending → processing → completed, then Stop. */
interface Workload {
  readonly sessionId: string;
  /** Tasks per session. */
  readonly tasks: number;
  /** Whether the session completes (the others stay "processing": recovery must list them). */
  readonly completes: boolean;
}

/** What the service must hold at the end: per task, the newest acknowledged state (one per column stamp here: every stage sets every column it touches). */
interface Expected {
  sessions: Map<string, { status: string; completed: number; updatedAt: string }>;
  tasks: Map<string, { status: string; target: string | null; updatedAt: string }>;
  /** Writes refused in the end (after retrying): must stay empty. */
  refused: string[];
}

/** One client of the translation backend through the balancer, every write acknowledged or recorded as refused. */
async function runClient(base: string, key: string, work: Workload, expected: Expected, absorbed: Absorbed, batch = 40): Promise<void> {
  let clock = Date.parse("2026-01-01T00:00:00Z") + Math.floor(Math.random() * 1000) * 1000;
  const stamp = () => new Date((clock += 1)).toISOString();
  const post = async (kind: "sessions" | "tasks", records: Json[]) => {
    const { status, json } = await rest(base, "POST", `/api/v1/translation/${kind}/batch`, { [kind]: records }, { key, routingKey: work.sessionId, absorbed });
    if (status !== 200) expected.refused.push(`${kind} ${status} ${JSON.stringify(json).slice(0, 200)}`);
    return status === 200;
  };
  const session = (status: string, completed: number) => {
    const updatedAt = stamp();
    return {
      record: { session_id: work.sessionId, filename: `${work.sessionId}.xlsx`, status, total_tasks: work.tasks, completed_tasks: completed, llm_provider: "test", updated_at: updatedAt },
      apply: () => expected.sessions.set(work.sessionId, { status, completed, updatedAt }),
    };
  };
  const first = session("processing", 0);
  if (await post("sessions", [first.record])) first.apply();
  let completed = 0;
  const limit = work.completes ? work.tasks : Math.floor(work.tasks / 2);
  for (let start = 0; start < limit; start += batch) {
    const ids = Array.from({ length: Math.min(batch, limit - start) }, (_, i) => `TASK_${String(start + i).padStart(4, "0")}`);
    for (const stage of ["pending", "processing", "completed"] as const) {
      const updatedAt = stamp();
      const records = ids.map((taskId, i) => ({
        session_id: work.sessionId,
        task_id: taskId,
        status: stage,
        ...(stage === "pending" ? { sheet_name: "Sheet1", row_index: start + i, column_name: "Text", source_text: `line ${taskId}` } : {}),
        target_text: stage === "completed" ? `ligne ${taskId}` : null,
        updated_at: updatedAt,
      }));
      if (await post("tasks", records)) {
        for (const r of records) expected.tasks.set(`${work.sessionId}/${r.task_id}`, { status: stage, target: r.target_text, updatedAt });
      }
    }
    completed += ids.length;
    const progress = session("processing", completed);
    if (await post("sessions", [progress.record])) progress.apply();
  }
  if (work.completes) {
    const done = session("completed", completed);
    if (await post("sessions", [done.record])) done.apply();
  }
  // Stop: everything out, then the instance holding it commits.
  const flushed = await rest(base, "POST", "/api/v1/translation/flush", {}, { key, routingKey: work.sessionId, absorbed });
  if (flushed.status !== 200) expected.refused.push(`flush ${flushed.status}`);
}

const describeWithNginx = nginxAvailable() ? describe : describe.skip;
if (!nginxAvailable()) console.warn("scale-out suite skipped: nginx is not installed (.ci/run installs it)");

describeWithNginx("scale-out: three instances behind nginx", () => {
  let target: SqlTarget;
  let balancer: Balancer;
  const dataDirs = NGINX_PORTS.instances.map(() => mkdtempSync(path.join(os.tmpdir(), "persistence-scale-")));
  const instances: (ServiceProcess | undefined)[] = [];
  const env = () => ({
    PERSISTENCE_SQL_URL: target.url,
    PERSISTENCE_REDIS_URL: "redis://127.0.0.1:6379",
    PERSISTENCE_EVENTS_URL: "nats://127.0.0.1:4222",
    // Instances of this run find each other, and no other deployment on the same NATS.
    PERSISTENCE_EVENTS_PREFIX: `scaleout_${RUN}`,
    PERSISTENCE_API_KEYS: JSON.stringify([
      { name: "operator", key: LOAD_KEY, scopes: ["admin"] },
      ...CLIENT_KEYS.map((key, c) => ({ name: `client${c}`, key, scopes: ["translation:read", "translation:write"] })),
      { name: "limited", key: LIMITED_KEY, scopes: ["system:read"] },
    ]),
    PERSISTENCE_RATE_LIMIT_PER_KEY: `${RATE.perSecond}:${RATE.burst}`,
    // Nothing commits by age while a test runs: what another instance sees comes through Flush.
    PERSISTENCE_FLUSH_INTERVAL_MS: "60000",
    PERSISTENCE_LOG_LEVEL: "info",
  });
  const start = async (i: number) => {
    instances[i] = await startServiceProcess({ ...env(), PERSISTENCE_LISTEN: `127.0.0.1:${NGINX_PORTS.instances[i]}`, PERSISTENCE_DATA_DIR: dataDirs[i]! });
  };
  const direct = (i: number) => `http://127.0.0.1:${NGINX_PORTS.instances[i]}`;
  /** GetInfo of instance i: its id and the live instances it knows. */
  const info = async (i: number) => (await rest(direct(i), "GET", "/")).json;
  /** Every instance knows the three live ones (after a restart, the dead one's heartbeat has lapsed). */
  const allKnowEachOther = () =>
    eventually(async () => {
      const infos = await Promise.all([0, 1, 2].map(info));
      const ids = infos.map((i) => i.instance_id as string).sort();
      const seen = infos.map((i) => (i.instances as Json[]).map((x) => x.id as string).sort());
      if (seen.every((list) => JSON.stringify(list) === JSON.stringify(ids))) return true;
      await sleep(400);
      return false;
    }, 30_000);
  const clusterFlush = async () => {
    const flushed = await rest(balancer.httpUrl, "POST", "/api/v1/translation/flush", { scope: "cluster" });
    expect(flushed.status).toBe(200);
    return flushed.json;
  };

  beforeAll(async () => {
    target = createSqlTarget("mysql", "scaleout");
    // The first instance creates the schema; the others start beside it.
    await start(0);
    await Promise.all([start(1), start(2)]);
    balancer = await startBalancer();
    await allKnowEachOther();
  }, 120_000);

  afterAll(async () => {
    for (const instance of instances) await instance?.stop("SIGKILL");
    await balancer?.stop();
    for (const dir of dataDirs) rmSync(dir, { recursive: true, force: true });
    await target?.drop();
  }, 60_000);

  it("lists the live instances in GetInfo and exposes each one's identity and the live count in its metrics", async () => {
    const infos = await Promise.all([0, 1, 2].map(info));
    const ids = infos.map((i) => i.instance_id as string);
    expect(new Set(ids).size).toBe(3);
    for (const [i, own] of infos.entries()) {
      const listed = own.instances as Json[];
      expect(listed.map((x) => x.id)).toEqual(expect.arrayContaining(ids));
      expect(listed[0]!.id).toBe(ids[i]);
      for (const x of listed) {
        expect(Number(x.buffered_records)).toBeGreaterThanOrEqual(0);
        expect(Date.parse(x.started_at as string)).toBeLessThanOrEqual(Date.parse(x.last_seen_at as string));
      }
      const metrics = await (await fetch(`${direct(i)}/metrics`, { headers: { authorization: `Bearer ${LOAD_KEY}` } })).text();
      expect(metrics).toContain(`persistence_instance_info{instance="${ids[i]}"} 1`);
      expect(metrics).toMatch(/^persistence_instances_live 3$/m);
    }
  });

  it("keeps every acknowledged record of ten concurrent clients while one instance is killed with SIGKILL and restarted, with the newest stamp per column, and recovery lists the unfinished sessions", async () => {
    const expected: Expected = { sessions: new Map(), tasks: new Map(), refused: [] };
    const absorbed: Absorbed = { byStatus: {} };
    const work = Array.from({ length: 10 }, (_, c): Workload => ({ sessionId: `so-${RUN}-kill-${c}`, tasks: 240, completes: c < 7 }));
    const clients = Promise.all(work.map((w, c) => runClient(balancer.httpUrl, CLIENT_KEYS[c]!, w, expected, absorbed)));
    // Midway (a third of the task records acknowledged), instance 2 dies without a word and comes back on its data directory.
    await eventually(async () => expected.tasks.size > (10 * 240) / 3, 60_000);
    const acknowledgedBeforeKill = expected.tasks.size;
    await instances[1]!.stop("SIGKILL");
    await sleep(500);
    await start(1);
    await clients;
    expect(expected.tasks.size).toBeGreaterThan(acknowledgedBeforeKill);
    expect(expected.refused).toEqual([]);

    // The restarted instance replayed its log; a cluster Flush commits what every instance holds.
    await allKnowEachOther();
    const flushed = await clusterFlush();
    expect(flushed.flushed_instances).toHaveLength(3);

    const store = await openServiceSql(target.url);
    try {
      const ids = work.map((w) => w.sessionId);
      const tasks = await sql<{ session_id: string; task_id: string; status: string; target_text: string | null; updated_at: number }>`
        select session_id, task_id, status, target_text, updated_at from translation_tasks where session_id in (${sql.join(ids)})`.execute(store.db);
      const stored = new Map(tasks.rows.map((r) => [`${r.session_id}/${r.task_id}`, r]));
      expect(stored.size).toBe(expected.tasks.size);
      const wrong = [...expected.tasks].filter(([key, want]) => {
        const got = stored.get(key);
        return !got || got.status !== want.status || got.target_text !== want.target || Number(got.updated_at) !== Date.parse(want.updatedAt) * 1000;
      });
      expect({ wrong: wrong.length, first: wrong.slice(0, 3).map(([key, want]) => ({ key, want, got: stored.get(key) })) }).toEqual({ wrong: 0, first: [] });
      const sessions = await sql<{ session_id: string; status: string; completed_tasks: number }>`
        select session_id, status, completed_tasks from translation_sessions where session_id in (${sql.join(ids)})`.execute(store.db);
      for (const row of sessions.rows) {
        const want = expected.sessions.get(row.session_id)!;
        expect({ id: row.session_id, status: row.status, completed: Number(row.completed_tasks) }).toEqual({ id: row.session_id, status: want.status, completed: want.completed });
      }
      expect(sessions.rows).toHaveLength(10);
    } finally {
      await store.close();
    }

    // Recovery through the balancer (any instance answers): exactly the three sessions that did not complete.
    const incomplete = await rest(balancer.httpUrl, "GET", "/api/v1/translation/recovery/incomplete-sessions");
    const ours = (incomplete.json.sessions as Json[]).map((s) => s.session_id as string).filter((id) => id.startsWith(`so-${RUN}-kill-`));
    expect(ours.sort()).toEqual(work.filter((w) => !w.completes).map((w) => w.sessionId).sort());
    const restored = await rest(balancer.httpUrl, "POST", `/api/v1/translation/recovery/restore/${work[9]!.sessionId}`, undefined, { routingKey: work[9]!.sessionId });
    expect(restored.json.tasks_count).toBe(0);
  }, 240_000);

  it("makes everything accepted by any instance visible on every instance after a cluster Flush", async () => {
    const sessionIds = Array.from({ length: 6 }, (_, i) => `so-${RUN}-flush-${i}`);
    // Each session's writes go to one instance directly, at ACCEPTED: held in that instance's buffer only.
    for (const [n, sessionId] of sessionIds.entries()) {
      const at = direct(n % 3);
      expect((await rest(at, "POST", "/api/v1/translation/sessions/batch", { sessions: [{ session_id: sessionId, filename: "f.xlsx" }], durability: "accepted" })).status).toBe(200);
      const tasks = Array.from({ length: 25 }, (_, i) => ({ session_id: sessionId, task_id: `T${i}`, source_text: `s${i}` }));
      expect((await rest(at, "POST", "/api/v1/translation/tasks/batch", { tasks, durability: "accepted" })).status).toBe(200);
    }
    // Not yet visible elsewhere (the flush interval is a minute): the test can tell the difference.
    expect((await rest(direct(1), "GET", `/api/v1/translation/sessions/${sessionIds[0]}`)).status).toBe(404);

    const flushed = await clusterFlush();
    expect(flushed.status).toBe("flushed");
    expect(flushed.flushed_instances).toHaveLength(3);
    expect(flushed.tasks_written).toBeGreaterThanOrEqual(150);
    for (const i of [0, 1, 2]) {
      for (const sessionId of sessionIds) {
        const listed = await rest(direct(i), "GET", `/api/v1/translation/sessions/${sessionId}/tasks?page_size=100`);
        expect({ i, sessionId, total: listed.json.total }).toEqual({ i, sessionId, total: 25 });
      }
    }
  });

  it("never brings a deleted session back: records other instances held when it was deleted stay deleted after they flush", async () => {
    const sessionId = `so-${RUN}-delete`;
    const write = (i: number, taskIds: string[]) =>
      rest(direct(i), "POST", "/api/v1/translation/tasks/batch", { tasks: taskIds.map((task_id) => ({ session_id: sessionId, task_id, source_text: "x" })), durability: "accepted" });
    expect((await rest(direct(0), "POST", "/api/v1/translation/sessions/batch", { sessions: [{ session_id: sessionId, filename: "d.xlsx" }], durability: "committed" })).status).toBe(200);
    expect((await write(0, ["A1", "A2"])).status).toBe(200);
    expect((await write(1, ["B1", "B2"])).status).toBe(200);
    const deleted = await rest(direct(2), "DELETE", `/api/v1/translation/sessions/${sessionId}`);
    expect(deleted.status).toBe(200);
    await clusterFlush();
    for (const i of [0, 1, 2]) {
      expect((await rest(direct(i), "GET", `/api/v1/translation/sessions/${sessionId}`)).status).toBe(404);
      expect((await rest(direct(i), "GET", `/api/v1/translation/tasks?session_id=${sessionId}`)).json.total).toBe(0);
    }
  });

  it("lets WatchSession on one instance follow changes committed by another, and the SDK's routing key keeps a session's reads on the instance holding its writes", async () => {
    const sessionId = `so-${RUN}-watch`;
    const watcherTransport = createGrpcTransport({ baseUrl: direct(0), idleConnectionTimeoutMs: 500, interceptors: [(next) => (req) => (req.header.set("authorization", `Bearer ${LOAD_KEY}`), next(req))] });
    const writerTransport = createGrpcTransport({ baseUrl: direct(2), idleConnectionTimeoutMs: 500, interceptors: [(next) => (req) => (req.header.set("authorization", `Bearer ${LOAD_KEY}`), next(req))] });
    const writer = createClient(TranslationService, writerTransport);
    await writer.batchUpsertSessions({ sessions: [{ sessionId, filename: "w.xlsx" }], durability: Durability.COMMITTED });
    const watching = new AbortController();
    const stream = createClient(TranslationService, watcherTransport).watchSession({ sessionId }, { signal: watching.signal })[Symbol.asyncIterator]();
    try {
      expect((await within(stream.next(), "snapshot")).value?.type).toBe(WatchEventType.SNAPSHOT);
      await writer.batchUpsertTasks({ tasks: [{ sessionId, taskId: "W1", status: TaskStatus.COMPLETED, targetText: "fait" }], durability: Durability.COMMITTED });
      const update = (await within(stream.next(), "the change committed by another instance")).value;
      expect(update?.type).toBe(WatchEventType.UPDATED);
      expect(update?.tasks.map((t: { taskId: string; targetText: string }) => [t.taskId, t.targetText])).toEqual([["W1", "fait"]]);
    } finally {
      watching.abort();
    }

    // Through the balancer's gRPC port with the SDK: each session's unflushed writes are read back at once.
    const sdk = createPersistenceClient({ baseUrl: balancer.h2cUrl, protocol: "grpc", apiKey: LOAD_KEY });
    try {
      const ids = Array.from({ length: 12 }, (_, i) => `so-${RUN}-route-${i}`);
      for (const id of ids) {
        await sdk.translation.batchUpsertSessions({ sessions: [{ sessionId: id, filename: "r.xlsx" }], durability: Durability.ACCEPTED });
        await sdk.translation.batchUpsertTasks({ tasks: [{ sessionId: id, taskId: "T1", sourceText: "unflushed" }], durability: Durability.ACCEPTED });
      }
      const seen = await Promise.all(ids.map(async (id) => (await sdk.translation.getSession({ sessionId: id })).session?.sessionId));
      expect(seen).toEqual(ids);
    } finally {
      sdk.close();
    }
  });

  it("shares a key's rate limit across the instances (within the bucket's refill during the burst plus 10%)", async () => {
    const started = Date.now();
    // Spread over the instances (no routing key: nginx hashes each request by its own id), 30 at a time.
    const statuses: number[] = [];
    // Until well past what one shared bucket allows by now (per-instance buckets would allow three times as much).
    const enough = () => statuses.length >= 2000 || statuses.length > 2 * (RATE.burst + (RATE.perSecond * (Date.now() - started)) / 1000);
    await Promise.all(
      Array.from({ length: 30 }, async () => {
        while (!enough()) {
          statuses.push(0);
          const res = await fetch(`${balancer.httpUrl}/api/v1/system/echo`, {
            method: "POST",
            headers: { authorization: `Bearer ${LIMITED_KEY}`, "content-type": "application/json" },
            body: "{}",
          });
          await res.text();
          statuses[statuses.indexOf(0)] = res.status;
        }
      }),
    );
    const seconds = (Date.now() - started) / 1000;
    const allowed = statuses.filter((s) => s === 200).length;
    expect(statuses.filter((s) => s !== 200 && s !== 429)).toEqual([]);
    // Per-instance buckets would let up to three bursts through.
    expect(allowed).toBeGreaterThanOrEqual(RATE.burst * 0.9);
    const bound = Math.ceil((RATE.burst + RATE.perSecond * seconds) * 1.1);
    expect(allowed).toBeLessThanOrEqual(bound);
    // The check has power: more were sent than the shared bucket allows.
    expect(bound).toBeLessThan(statuses.length);
    console.info(`rate limit: ${allowed} of ${statuses.length} calls allowed in ${seconds.toFixed(2)} s (bound ${bound})`);
  });

  it("loses nothing and refuses nothing a retrying client absorbs while all three instances restart one after another under load, and drains streams without cutting them", async () => {
    const expected: Expected = { sessions: new Map(), tasks: new Map(), refused: [] };
    const absorbed: Absorbed = { byStatus: {} };
    // Six clients, each running one session after another until every instance has restarted.
    let restarting = true;
    const sessions: string[] = [];
    const clients = Promise.all(
      Array.from({ length: 6 }, async (_, c) => {
        for (let n = 0; restarting; n++) {
          const work: Workload = { sessionId: `so-${RUN}-roll-${c}-${n}`, tasks: 200, completes: true };
          sessions.push(work.sessionId);
          await runClient(balancer.httpUrl, CLIENT_KEYS[c]!, work, expected, absorbed, 20);
        }
      }),
    );
    // A WatchSession through the balancer's gRPC port: when its instance drains it ends, cleanly.
    const watchIds = Array.from({ length: 3 }, (_, i) => `so-${RUN}-roll-watch-${i}`);
    const sdk = createPersistenceClient({ baseUrl: balancer.h2cUrl, protocol: "grpc", apiKey: LOAD_KEY, retry: false });
    const watchEnds: Promise<string>[] = [];
    for (const id of watchIds) {
      await sdk.translation.batchUpsertSessions({ sessions: [{ sessionId: id, filename: "w.xlsx" }], durability: Durability.COMMITTED });
      watchEnds.push(
        (async () => {
          try {
            // A watch outlives the SDK's default 30 s deadline.
            for await (const event of sdk.translation.watchSession({ sessionId: id }, { timeoutMs: 600_000 })) void event;
            return "ended";
          } catch (err) {
            return `failed: ${(err as Error).message}`;
          }
        })(),
      );
    }
    const exits: (number | null)[] = [];
    for (const i of [0, 1, 2]) {
      await sleep(1500);
      exits.push(await instances[i]!.stop("SIGTERM"));
      await start(i);
    }
    restarting = false;
    await clients;
    const ends = await within(Promise.all(watchEnds), "every watch ended by its instance's drain", 30_000);
    sdk.close();
    expect({ exits, ends, refused: expected.refused }).toEqual({ exits: [0, 0, 0], ends: ["ended", "ended", "ended"], refused: [] });

    await allKnowEachOther();
    await clusterFlush();
    const store = await openServiceSql(target.url);
    try {
      const { rows } = await sql<{ n: number }>`select count(*) as n from translation_tasks where session_id in (${sql.join(sessions)}) and status = 'completed'`.execute(store.db);
      expect(Number(rows[0]!.n)).toBe(sessions.length * 200);
      expect(expected.tasks.size).toBe(sessions.length * 200);
    } finally {
      await store.close();
    }
    // What the clients absorbed, for the report (429s are the shared rate limit; 502/503/0 the restarts).
    console.info(`rolling restart: retried ${JSON.stringify(absorbed.byStatus)}`);
  }, 240_000);
});
