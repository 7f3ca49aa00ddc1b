import { createHash, randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { sql } from "kysely";
import type { MessageInitShape } from "@bufbuild/protobuf";
import { Code, createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { createPersistenceClient } from "../../clients/src/index";
import { Durability } from "../../gen/persistence/v1/common_pb";
import { FileStatus, StorageService, type UploadRequestSchema } from "../../gen/persistence/v1/storage_pb";
import { TaskStatus, TranslationService, WatchEventType } from "../../gen/persistence/v1/translation_pb";
import { openS3ObjectStore } from "../../server/backends/objects/s3";
import { parseS3Url } from "../../server/backends/objects/s3-url";
import type { ObjectStore } from "../../server/backends/objects/object-store";
import { openServiceSql } from "../../server/schema";
import { NGINX_PORTS, nginxAvailable, startBalancer, type Balancer } from "../support/balancer";
import { errorOf } from "../support/errors";
import { s3ServerUrl, withOwnBucket } from "../support/s3-server";
import { startServiceProcess, type ServiceProcess } from "../support/service-process";
import { createSqlTarget, type SqlTarget } from "../support/sql-targets";
import { eventually, within } from "../support/wait";

/**
 * Three service processes behind deploy/nginx/nginx.conf (as it is), over one MariaDB, Redis (shared
 * rate limits), NATS (the events role) and an S3-compatible store (Swift's s3api: the objects role):
 * what a client sees through the balancer while instances die, restart and drain.
 */

type Json = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

const RUN = `${process.pid}${randomBytes(3).toString("hex")}`;
/** The test's own calls (checks, cluster Flush). */
const LOAD_KEY = `operator-${randomBytes(12).toString("hex")}`;
/** One key per client of the load, each with its own share of the rate limit. */
const CLIENT_KEYS = Array.from({ length: 10 }, (_, c) => `client${c}-${randomBytes(12).toString("hex")}`);
const LIMITED_KEY = `limited-${randomBytes(12).toString("hex")}`;
/** Keys the files tests take turns with (each has its own share of the rate limit). */
const FILES_KEYS = Array.from({ length: 6 }, (_, c) => `files${c}-${randomBytes(12).toString("hex")}`);
let filesTurn = 0;
const filesKey = () => FILES_KEYS[filesTurn++ % FILES_KEYS.length]!;
const MiB = 1024 * 1024;
const HOUR_MICROS = 3_600_000_000;
const sha256 = (data: Buffer) => createHash("sha256").update(data).digest("hex");
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

/** The objects role: one bucket of this run on the S3 server (TEST_S3_URL or scripts/s3-server.sh), shared by the three instances. */
const s3 = nginxAvailable() ? s3ServerUrl() : { skip: "nginx is not installed" };
const S3_URL = "url" in s3 ? withOwnBucket(s3.url, "scaleout") : undefined;
const describeWithS3 = S3_URL ? describe : describe.skip;
if (!S3_URL) process.stderr.write(`\n*** SKIPPED: scale-out files over S3 (the instances share no object store): ${"skip" in s3 ? s3.skip : ""} ***\n\n`);
/** The files cleanup runs this often on every instance (under its lease, so on one at a time). */
const CLEANUP_INTERVAL_MS = 1000;

/** A multipart/form-data upload (form fields, then the file) through `base`. */
async function restUpload(base: string, data: Buffer, name: string, fields: Record<string, string> = {}): Promise<{ status: number; json: Json }> {
  const form = new FormData();
  for (const [field, value] of Object.entries(fields)) form.append(field, value);
  form.append("file", new Blob([data]), name);
  const res = await fetch(`${base}/api/v1/storage/files/upload`, { method: "POST", body: form, headers: { authorization: `Bearer ${filesKey()}` } });
  return { status: res.status, json: (await res.json()) as Json };
}

/** GET .../download?stream=true at `base`, whole or `range` ("bytes=a-b"). */
async function restDownload(base: string, fileId: string, range?: string): Promise<{ status: number; body: Buffer; contentRange: string | null }> {
  const res = await fetch(`${base}/api/v1/storage/files/${fileId}/download?stream=true`, { headers: { authorization: `Bearer ${filesKey()}`, ...(range ? { range } : {}) } });
  return { status: res.status, body: Buffer.from(await res.arrayBuffer()), contentRange: res.headers.get("content-range") };
}

/** StorageService over gRPC at `baseUrl` (an instance, or the balancer's h2c port). */
function storageAt(baseUrl: string) {
  const transport = createGrpcTransport({ baseUrl, idleConnectionTimeoutMs: 500, interceptors: [(next) => (req) => (req.header.set("authorization", `Bearer ${filesKey()}`), next(req))] });
  return createClient(StorageService, transport);
}

type UploadMessage = MessageInitShape<typeof UploadRequestSchema>;

/** An Upload stream of `data` in 256 KiB chunks that, after `pauseAt` bytes, waits for `resume()`. */
function pausedUpload(client: ReturnType<typeof storageAt>, description: { filename: string; ownerId: string }, data: Buffer, pauseAt = Infinity) {
  let resume!: () => void;
  const resumed = new Promise<void>((r) => (resume = r));
  async function* messages(): AsyncGenerator<UploadMessage> {
    yield { part: { case: "description", value: { ...description, sizeBytes: BigInt(data.length), sha256: sha256(data) } } };
    for (let offset = 0; offset < data.length; offset += 256 * 1024) {
      if (offset >= pauseAt) await resumed;
      yield { part: { case: "chunk", value: data.subarray(offset, offset + 256 * 1024) } };
    }
  }
  const done = client.upload(messages());
  done.catch(() => {});
  return { done, resume };
}

/** The bytes of a gRPC Download (`offset`, `length` 0 for to the end). */
async function grpcDownload(client: ReturnType<typeof storageAt>, fileId: string, offset = 0, length = 0): Promise<Buffer> {
  const chunks: Uint8Array[] = [];
  for await (const message of client.download({ fileId, offset: BigInt(offset), length: BigInt(length) })) if (message.part.case === "chunk") chunks.push(message.part.value);
  return Buffer.concat(chunks);
}

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
      ...FILES_KEYS.map((key, c) => ({ name: `files${c}`, key, scopes: ["files:read", "files:write", "files:admin"] })),
    ]),
    PERSISTENCE_RATE_LIMIT_PER_KEY: `${RATE.perSecond}:${RATE.burst}`,
    // Nothing commits by age while a test runs: what another instance sees comes through Flush.
    PERSISTENCE_FLUSH_INTERVAL_MS: "60000",
    PERSISTENCE_LOG_LEVEL: "info",
    // One bucket for all three; without S3 each instance keeps its files in its own data directory (and the files tests skip).
    ...(S3_URL ? { PERSISTENCE_S3_URL: S3_URL, PERSISTENCE_FILES_CLEANUP_INTERVAL_MS: String(CLEANUP_INTERVAL_MS) } : {}),
  });
  /** Every process started, the dead ones too (their logs count). */
  const everStarted: ServiceProcess[] = [];
  const start = async (i: number) => {
    instances[i] = await startServiceProcess({ ...env(), PERSISTENCE_LISTEN: `127.0.0.1:${NGINX_PORTS.instances[i]}`, PERSISTENCE_DATA_DIR: dataDirs[i]! });
    everStarted.push(instances[i]!);
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

  describeWithS3("files in the shared S3 bucket", () => {
    /** The bucket the instances use, to look behind their back (and plant debris). */
    let store: ObjectStore;
    const grpcAt = (i: number) => storageAt(direct(i));
    const fileOf = async (i: number, fileId: string) => (await grpcAt(i).getFile({ fileId })).file!;
    /** The scheduled cleanup runs each process logged after `mark` (all of them for processes started since). */
    const cleanupRuns = (mark: Map<ServiceProcess, number>) =>
      everStarted.flatMap((p) => p.logs.slice(mark.get(p) ?? 0).filter((l) => l.msg === "scheduled files cleanup done").map((l): Json => ({ ...l, pid: p.child.pid })));
    const logMark = () => new Map(everStarted.map((p) => [p, p.logs.length]));
    const sum = (runs: Json[], field: string) => runs.reduce((n, r) => n + Number(r[field] ?? 0), 0);
    /** Whether instance i answers GetFile NOT_FOUND. */
    const goneAt = (i: number, fileId: string) =>
      grpcAt(i)
        .getFile({ fileId })
        .then(
          () => false,
          (err: unknown) => (err as { code?: Code }).code === Code.NotFound,
        );

    beforeAll(async () => {
      store = await openS3ObjectStore(parseS3Url(S3_URL!), { partSize: 5 * MiB });
    });

    afterAll(async () => {
      if (!store) return;
      for (const upload of await store.listMultipartUploads()) await store.abortMultipartUpload(upload.key, upload.uploadId);
      for (let page = await store.list(); ; page = await store.list({ cursor: page.nextCursor! })) {
        await store.deleteMany(page.items.map((i) => i.key));
        if (!page.nextCursor) break;
      }
      await store.close();
    }, 60_000);

    it("stores an upload through the balancer (REST multipart and the gRPC client stream) once, and every instance serves it whole and by range with the same SHA-256", async () => {
      // Both longer than the store's 8 MiB part (S3 multipart uploads); the first longer than a limit nginx once had (64 MiB).
      const restData = randomBytes(66 * MiB + 123);
      const grpcData = randomBytes(9 * MiB + 7);
      const up = await restUpload(balancer.httpUrl, restData, "rest.bin", { sha256: sha256(restData), owner_id: `so-${RUN}-up` });
      expect(up.status).toBe(201);
      expect(up.json.file).toMatchObject({ status: "uploaded", size_bytes: restData.length, sha256: sha256(restData) });
      const viaGrpc = (await pausedUpload(storageAt(balancer.h2cUrl), { filename: "grpc.bin", ownerId: `so-${RUN}-up` }, grpcData).done).file!;
      expect(viaGrpc).toMatchObject({ status: FileStatus.UPLOADED, sizeBytes: BigInt(grpcData.length), sha256: sha256(grpcData) });
      const files = [
        { id: up.json.file.file_id as string, data: restData },
        { id: viaGrpc.fileId, data: grpcData },
      ];
      for (const { id, data } of files) expect((await store.stat(`files/${id}`)).size).toBe(data.length);

      for (const i of [0, 1, 2]) {
        for (const { id, data } of files) {
          // Across the store's first part boundary, and the last bytes.
          const ranges = [
            [8 * MiB - 100, 8 * MiB + 99],
            [data.length - 10, data.length - 1],
          ] as const;
          expect(await fileOf(i, id)).toMatchObject({ status: FileStatus.UPLOADED, sha256: sha256(data) });
          const whole = await restDownload(direct(i), id);
          expect({ i, id, status: whole.status, sha256: sha256(whole.body) }).toEqual({ i, id, status: 200, sha256: sha256(data) });
          for (const [from, to] of ranges) {
            const part = await restDownload(direct(i), id, `bytes=${from}-${to}`);
            expect({ status: part.status, range: part.contentRange }).toEqual({ status: 206, range: `bytes ${from}-${to}/${data.length}` });
            expect(part.body.equals(data.subarray(from, to + 1))).toBe(true);
            expect((await grpcDownload(grpcAt(i), id, from, to - from + 1)).equals(data.subarray(from, to + 1))).toBe(true);
          }
        }
        // The presigned GET any instance signs reads the same object from S3.
        const { url } = await grpcAt(i).getDownloadUrl({ fileId: viaGrpc.fileId });
        expect(sha256(Buffer.from(await (await fetch(url)).arrayBuffer()))).toBe(sha256(grpcData));
      }
    }, 120_000);

    it("completes on other instances what CreateUploadUrl started on one: a presigned PUT, and presigned parts joined by two instances at once", async () => {
      const small = randomBytes(300_000);
      const single = await grpcAt(0).createUploadUrl({ filename: "single.csv", contentType: "text/csv", sizeBytes: BigInt(small.length), sha256: sha256(small) });
      expect((await fetch(single.uploadUrl, { method: "PUT", body: small, headers: single.headers })).status).toBe(200);
      // Not available anywhere before CompleteUpload.
      expect((await fileOf(2, single.fileId)).status).toBe(FileStatus.PENDING_UPLOAD);
      expect((await restDownload(direct(2), single.fileId)).status).toBe(409);
      expect((await grpcAt(1).completeUpload({ fileId: single.fileId })).file).toMatchObject({ status: FileStatus.UPLOADED, sha256: sha256(small), contentType: "text/csv" });
      expect(sha256((await restDownload(direct(2), single.fileId)).body)).toBe(sha256(small));

      const big = randomBytes(11 * MiB + 3);
      const multi = await grpcAt(1).createUploadUrl({ filename: "parts.bin", sizeBytes: BigInt(big.length), sha256: sha256(big), multipart: true, partSizeBytes: BigInt(5 * MiB) });
      expect(multi.partCount).toBe(3);
      const parts = await Promise.all(
        multi.parts.map(async (p) => {
          const res = await fetch(p.url, { method: "PUT", body: big.subarray(Number(p.offset), Number(p.offset + p.sizeBytes)) });
          expect(res.status).toBe(200);
          return { partNumber: p.partNumber, etag: res.headers.get("etag")! };
        }),
      );
      // A client whose CompleteUpload timed out retries it through another instance while the first is still joining.
      const completed = await Promise.all([0, 2].map((i) => grpcAt(i).completeUpload({ fileId: multi.fileId, parts })));
      for (const { file } of completed) expect(file).toMatchObject({ status: FileStatus.UPLOADED, sizeBytes: BigInt(big.length), sha256: sha256(big) });
      const tail = await restDownload(direct(1), multi.fileId, `bytes=${5 * MiB - 3}-${big.length - 1}`);
      expect(tail.status).toBe(206);
      expect(tail.body.equals(big.subarray(5 * MiB - 3))).toBe(true);
      expect(sha256((await restDownload(direct(0), multi.fileId)).body)).toBe(sha256(big));
      expect((await store.listMultipartUploads({ prefix: `files/${multi.fileId}` })).length).toBe(0);
    }, 60_000);

    it("loses nothing acknowledged when an instance is killed with SIGKILL during an upload stream: the completed file is intact, the cut one never becomes available and cleanup takes it away", async () => {
      const owner = `so-${RUN}-cut`;
      const kept = randomBytes(2 * MiB + 1);
      const keptFile = (await pausedUpload(grpcAt(2), { filename: "kept.bin", ownerId: owner }, kept).done).file!;
      expect(keptFile.status).toBe(FileStatus.UPLOADED);
      // 12 of 20 MiB sent: the instance has begun its multipart upload to S3, then dies.
      const cutData = randomBytes(20 * MiB);
      const cut = pausedUpload(grpcAt(2), { filename: "cut.bin", ownerId: owner }, cutData, 12 * MiB);
      let cutId = "";
      await eventually(async () => {
        const pending = await grpcAt(0).listFiles({ ownerId: owner, status: FileStatus.PENDING_UPLOAD });
        cutId = pending.items[0]?.fileId ?? "";
        return cutId !== "" && (await store.listMultipartUploads({ prefix: `files/${cutId}` })).length === 1;
      }, 30_000);
      await instances[2]!.stop("SIGKILL");
      cut.resume();
      await expect(cut.done).rejects.toBeDefined();

      for (const i of [0, 1]) {
        expect((await fileOf(i, keptFile.fileId)).status).toBe(FileStatus.UPLOADED);
        expect(sha256(await grpcDownload(grpcAt(i), keptFile.fileId))).toBe(sha256(kept));
        expect((await fileOf(i, cutId)).status).toBe(FileStatus.PENDING_UPLOAD);
        expect((await restDownload(direct(i), cutId)).status).toBe(409);
        expect((await errorOf(grpcAt(i).getDownloadUrl({ fileId: cutId }))).code).toBe(Code.FailedPrecondition);
        const available = await grpcAt(i).listFiles({ ownerId: owner, status: FileStatus.UPLOADED });
        expect(available.items.map((f) => f.fileId)).toEqual([keptFile.fileId]);
      }
      await expect(store.stat(`files/${cutId}`)).rejects.toMatchObject({ code: Code.NotFound });

      await start(2);
      await allKnowEachOther();
      expect((await fileOf(2, cutId)).status).toBe(FileStatus.PENDING_UPLOAD);
      expect(sha256((await restDownload(direct(2), keptFile.fileId)).body)).toBe(sha256(kept));

      // A day later (its row made older), the scheduled cleanup drops the abandoned file and aborts its upload in S3.
      const mark = logMark();
      const db = await openServiceSql(target.url);
      try {
        await sql`update file_metadata set created_at = created_at - ${25 * HOUR_MICROS} where file_id = ${cutId}`.execute(db.db);
      } finally {
        await db.close();
      }
      await eventually(async () => (await goneAt(1, cutId)) && (await store.listMultipartUploads({ prefix: `files/${cutId}` })).length === 0, 30_000);
      for (const i of [0, 1, 2]) expect((await errorOf(grpcAt(i).getFile({ fileId: cutId }))).code).toBe(Code.NotFound);
      await eventually(async () => sum(cleanupRuns(mark), "abandonedUploads") >= 1, 10_000);
      expect(sum(cleanupRuns(mark), "abandonedUploads")).toBe(1);
      expect((await fileOf(0, keptFile.fileId)).status).toBe(FileStatus.UPLOADED);
    }, 120_000);

    it("runs the scheduled cleanup on one instance at a time (each expired file counted once), and its reconciliation leaves alone what other instances are uploading", async () => {
      // Files a week old: the scheduled cleanup (every second, on whichever instance holds the lease) deletes each once.
      const owner = `so-${RUN}-old`;
      const ids: string[] = [];
      for (let n = 0; n < 60; n += 6) {
        const batch = await Promise.all(Array.from({ length: 6 }, (_, k) => restUpload(balancer.httpUrl, Buffer.from(`old ${n + k}`), `old-${n + k}.txt`, { owner_id: owner })));
        for (const up of batch) {
          expect(up.status).toBe(201);
          ids.push(up.json.file.file_id as string);
        }
      }
      const mark = logMark();
      const db = await openServiceSql(target.url);
      try {
        await sql`update file_metadata set updated_at = updated_at - ${8 * 24 * HOUR_MICROS}, expires_at = ${(Date.now() - 60_000) * 1000} where owner_id = ${owner}`.execute(db.db);
      } finally {
        await db.close();
      }
      await eventually(async () => (await grpcAt(0).listFiles({ ownerId: owner })).total === 0, 30_000);
      await eventually(async () => sum(cleanupRuns(mark), "expiredFiles") >= ids.length, 10_000);
      // one more run after that, on any instance: nothing left to count twice
      const counted = cleanupRuns(mark).length;
      await eventually(async () => cleanupRuns(mark).length > counted, 10_000);
      const runs = cleanupRuns(mark);
      expect(sum(runs, "expiredFiles")).toBe(ids.length);
      for (const id of ids) await expect(store.stat(`files/${id}`)).rejects.toMatchObject({ code: Code.NotFound });
      for (const i of [0, 1, 2]) expect((await errorOf(grpcAt(i).getFile({ fileId: ids[0]! }))).code).toBe(Code.NotFound);
      // no two runs at once: each run's span [end - duration, end] is apart from every other's
      const spans = runs.map((r) => ({ pid: r.pid, end: Date.parse(String(r.time)), start: Date.parse(String(r.time)) - Number(r.durationMs) })).sort((a, b) => a.start - b.start);
      expect(spans.every((s) => Number.isFinite(s.start))).toBe(true);
      const overlapping = spans.flatMap((s, k) => spans.slice(0, k).filter((earlier) => s.start < earlier.end).map((earlier) => ({ earlier, later: s })));
      expect(overlapping).toEqual([]);

      // In flight on the instances while cleanup runs (and is asked to run on the others): a streamed upload on 0 (its
      // multipart upload open in S3, no row naming it), a presigned PUT stored but not completed (from 1), presigned parts
      // stored but not joined (from 2). Beside them, debris with no file: an object and an upload that cleanup must remove.
      const streamed = randomBytes(20 * MiB);
      const streaming = pausedUpload(grpcAt(0), { filename: "streaming.bin", ownerId: `so-${RUN}-flight` }, streamed, 12 * MiB);
      await eventually(async () => {
        const pending = await grpcAt(1).listFiles({ ownerId: `so-${RUN}-flight`, status: FileStatus.PENDING_UPLOAD });
        const id = pending.items[0]?.fileId;
        return id !== undefined && (await store.listMultipartUploads({ prefix: `files/${id}` })).length === 1;
      }, 30_000);
      const small = randomBytes(1000);
      const single = await grpcAt(1).createUploadUrl({ filename: "single.bin", sizeBytes: BigInt(small.length), sha256: sha256(small) });
      expect((await fetch(single.uploadUrl, { method: "PUT", body: small, headers: single.headers })).status).toBe(200);
      const big = randomBytes(6 * MiB);
      const multi = await grpcAt(2).createUploadUrl({ filename: "parts.bin", sizeBytes: BigInt(big.length), sha256: sha256(big), multipart: true, partSizeBytes: BigInt(5 * MiB) });
      const parts = await Promise.all(
        multi.parts.map(async (p) => ({ partNumber: p.partNumber, etag: (await fetch(p.url, { method: "PUT", body: big.subarray(Number(p.offset), Number(p.offset + p.sizeBytes)) })).headers.get("etag")! })),
      );
      const debrisKey = `files/f_debris_${randomBytes(6).toString("hex")}`;
      await store.put(debrisKey, Buffer.from("no file names this"));
      const debrisUpload = await store.createMultipartUpload(`files/f_debris_${randomBytes(6).toString("hex")}`);
      // Older than cleanup's margin for what changed just now (S3 keeps whole seconds).
      await sleep(3500);
      const asked = await Promise.all([1, 2].map((i) => grpcAt(i).cleanupFiles({})));
      for (const result of asked) expect(result).toMatchObject({ missingObjects: 0, expiredFiles: 0, abandonedUploads: 0 });
      await expect(store.stat(debrisKey)).rejects.toMatchObject({ code: Code.NotFound });
      expect((await store.listMultipartUploads({ prefix: "files/f_debris_" })).map((u) => u.uploadId)).not.toContain(debrisUpload);

      streaming.resume();
      expect((await streaming.done).file).toMatchObject({ status: FileStatus.UPLOADED, sha256: sha256(streamed) });
      expect((await grpcAt(2).completeUpload({ fileId: single.fileId })).file?.status).toBe(FileStatus.UPLOADED);
      expect((await grpcAt(0).completeUpload({ fileId: multi.fileId, parts })).file?.status).toBe(FileStatus.UPLOADED);
      const streamedId = (await streaming.done).file!.fileId;
      for (const [id, data] of [
        [streamedId, streamed],
        [single.fileId, small],
        [multi.fileId, big],
      ] as const) {
        expect(sha256((await restDownload(direct(1), id)).body)).toBe(sha256(data));
      }
    }, 120_000);

    it("makes a delete through one instance seen by every instance, and takes the object out of S3", async () => {
      const owner = `so-${RUN}-del`;
      const ups = await Promise.all([0, 1, 2].map((n) => restUpload(balancer.httpUrl, randomBytes(1000 + n), `d${n}.bin`, { owner_id: owner })));
      const [one, two, three] = ups.map((u) => u.json.file.file_id as string) as [string, string, string];
      const { url } = await grpcAt(0).getDownloadUrl({ fileId: one });
      expect((await fetch(url)).status).toBe(200);

      expect((await rest(direct(1), "DELETE", `/api/v1/storage/files/${one}`, undefined, { key: filesKey() })).status).toBe(200);
      const batch = await grpcAt(2).batchDeleteFiles({ fileIds: [two, three, "f_missing"] });
      expect({ deleted: batch.deleted, notFound: batch.notFoundIds }).toEqual({ deleted: 2, notFound: ["f_missing"] });
      for (const i of [0, 1, 2]) {
        for (const id of [one, two, three]) {
          expect((await errorOf(grpcAt(i).getFile({ fileId: id }))).code).toBe(Code.NotFound);
          expect((await restDownload(direct(i), id)).status).toBe(404);
        }
        expect((await grpcAt(i).listFiles({ ownerId: owner })).total).toBe(0);
      }
      for (const id of [one, two, three]) await expect(store.stat(`files/${id}`)).rejects.toMatchObject({ code: Code.NotFound });
      // a URL signed before the delete finds nothing
      expect((await fetch(url)).status).toBe(404);
    });
  });
});
