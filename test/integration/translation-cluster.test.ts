import { randomBytes } from "node:crypto";
import { Code, ConnectError } from "@connectrpc/connect";
import type { EventBus } from "../../server/backends/events/event-bus";
import { openNatsEventBus } from "../../server/backends/events/nats";
import { Durability } from "../../gen/persistence/v1/common_pb";
import { SystemService } from "../../gen/persistence/v1/system_pb";
import { FlushScope, TaskStatus, TranslationService, WatchEventType, type Task } from "../../gen/persistence/v1/translation_pb";
import { restCall } from "../support/rest-call";
import { createSqlTarget, type SqlTarget } from "../support/sql-targets";
import { createTcpProxy, type TcpProxy } from "../support/tcp-proxy";
import { startTestServer, type TestServer } from "../support/test-server";
import { eventually, within } from "../support/wait";

const NATS = "nats://127.0.0.1:4222";

/** Two instances in this process over one MariaDB and one NATS (a prefix of their own); the first reaches NATS through a proxy that can cut it off. */
describe("translation across instances (events role over NATS)", () => {
  const prefix = `cluster_${randomBytes(4).toString("hex")}`;
  let target: SqlTarget;
  let proxy: TcpProxy;
  let a: TestServer;
  let b: TestServer;
  const settings = () => ({
    PERSISTENCE_SQL_URL: target.url,
    PERSISTENCE_EVENTS_PREFIX: prefix,
    // Nothing commits by age during a test: what the other instance sees comes through Flush.
    PERSISTENCE_FLUSH_INTERVAL_MS: "60000",
  });
  const session = (sessionId: string) => ({ sessionId, filename: `${sessionId}.xlsx` });
  const task = (sessionId: string, taskId: string, extra: object = {}) => ({ sessionId, taskId, sourceText: `text of ${taskId}`, ...extra });

  beforeAll(async () => {
    target = createSqlTarget("mysql", "cluster");
    proxy = await createTcpProxy(4222);
    a = await startTestServer({ ...settings(), PERSISTENCE_EVENTS_URL: `nats://127.0.0.1:${proxy.port}` });
    b = await startTestServer({ ...settings(), PERSISTENCE_EVENTS_URL: NATS });
  }, 60_000);
  afterAll(async () => {
    await b?.close();
    await a?.close();
    await proxy?.close();
    await target?.drop();
  });

  it("commits what every instance accepted on a cluster Flush, and only its own on an instance Flush", async () => {
    const [ta, tb] = [a.client(TranslationService, "grpc"), b.client(TranslationService)];
    await ta.batchUpsertTasks({ tasks: [task("cf-a", "T1"), task("cf-a", "T2")], durability: Durability.ACCEPTED });
    await tb.batchUpsertTasks({ tasks: [task("cf-b", "T1")], durability: Durability.ACCEPTED });

    const own = await ta.flush({});
    expect(own).toMatchObject({ status: "flushed", tasksWritten: 2 });
    expect(own.flushedInstances).toHaveLength(1);
    expect((await tb.getRecoveryStatus({})).bufferRecords).toBe(1n);

    await ta.batchUpsertTasks({ tasks: [task("cf-a", "T3")], durability: Durability.ACCEPTED });
    const all = await ta.flush({ scope: FlushScope.CLUSTER });
    expect(all).toMatchObject({ status: "flushed", tasksWritten: 2 });
    const ids = await Promise.all([a, b].map(async (s) => (await s.client(SystemService).getInfo({})).instanceId));
    expect([...all.flushedInstances].sort()).toEqual([...ids].sort());
    expect((await tb.listTasks({ sessionId: "cf-a" })).total).toBe(3);
    expect((await ta.listTasks({ sessionId: "cf-b" })).total).toBe(1);
    expect(await ta.flush({ scope: FlushScope.CLUSTER })).toMatchObject({ status: "empty", tasksWritten: 0 });
  });

  it("takes the scope on REST as its short lowercase name, and names the field of an unknown one", async () => {
    await b.client(TranslationService).batchUpsertTasks({ tasks: [task("cf-rest", "T1")], durability: Durability.ACCEPTED });
    const flushed = await restCall(a.url, "POST", "/api/v1/translation/flush", { scope: "cluster" });
    expect(flushed.status).toBe(200);
    expect(flushed.json).toMatchObject({ status: "flushed", tasks_written: 1 });
    expect(flushed.json.flushed_instances).toHaveLength(2);
    const unknown = await restCall(a.url, "POST", "/api/v1/translation/flush", { scope: "everywhere" });
    expect(unknown.status).toBe(400);
    expect(JSON.stringify(unknown.json)).toContain("scope");
    const numeric = await a
      .client(TranslationService)
      .flush({ scope: 9 as FlushScope })
      .catch((err: unknown) => ConnectError.from(err));
    expect(numeric).toBeInstanceOf(ConnectError);
    expect((numeric as ConnectError).code).toBe(Code.InvalidArgument);
    expect((numeric as ConnectError).rawMessage).toContain("scope");
  });

  describe("with a third instance on the bus that does not confirm", () => {
    let stranger: EventBus;
    afterEach(async () => {
      await stranger?.close();
    });
    /** Until the first instance has heard the newcomer's hello, it does not wait for it. */
    const known = (id: string) => eventually(async () => (await a.client(SystemService).getInfo({})).instances.some((i) => i.id === id));

    it("fails a cluster Flush with UNAVAILABLE naming an instance whose flush failed, after the others committed", async () => {
      stranger = await openNatsEventBus(NATS, { prefix, instanceId: "stranger-failing" });
      await stranger.respond("translation.flush", () => {
        throw new Error("disk on fire");
      });
      await known("stranger-failing");
      await b.client(TranslationService).batchUpsertTasks({ tasks: [task("cf-fail", "T1")], durability: Durability.ACCEPTED });
      const err = await a
        .client(TranslationService)
        .flush({ scope: FlushScope.CLUSTER })
        .catch((e: unknown) => ConnectError.from(e));
      expect(err).toBeInstanceOf(ConnectError);
      expect((err as ConnectError).code).toBe(Code.Unavailable);
      expect((err as ConnectError).rawMessage).toMatch(/stranger-failing \(.*disk on fire.*\) did not confirm/);
      // The instances that could commit did.
      expect((await a.client(TranslationService).listTasks({ sessionId: "cf-fail" })).total).toBe(1);
    });

    it("fails a cluster Flush with UNAVAILABLE naming a live instance that does not answer in time", async () => {
      stranger = await openNatsEventBus(NATS, { prefix, instanceId: "stranger-silent" });
      await stranger.respond("translation.flush", () => new Promise(() => {}));
      await known("stranger-silent");
      const err = await a
        .client(TranslationService)
        .flush({ scope: FlushScope.CLUSTER }, { timeoutMs: 30_000 })
        .catch((e: unknown) => ConnectError.from(e));
      expect((err as ConnectError).code).toBe(Code.Unavailable);
      expect((err as ConnectError).rawMessage).toMatch(/stranger-silent \(no answer within \d+ ms\)/);
    }, 30_000);
  });

  it("lets WatchSession on one instance follow what another commits, down to a delete", async () => {
    const sessionId = `cw-${randomBytes(3).toString("hex")}`;
    const tb = b.client(TranslationService);
    await tb.batchUpsertSessions({ sessions: [session(sessionId)], durability: Durability.COMMITTED });
    const watching = new AbortController();
    const stream = a.client(TranslationService, "grpc").watchSession({ sessionId }, { signal: watching.signal })[Symbol.asyncIterator]();
    try {
      expect((await within(stream.next(), "snapshot")).value?.type).toBe(WatchEventType.SNAPSHOT);
      await tb.batchUpsertTasks({ tasks: [task(sessionId, "T1", { status: TaskStatus.COMPLETED, targetText: "fini" })], durability: Durability.COMMITTED });
      const update = (await within(stream.next(), "the other instance's commit")).value;
      expect(update?.type).toBe(WatchEventType.UPDATED);
      expect(update?.tasks.map((t: Task) => [t.taskId, t.targetText])).toEqual([["T1", "fini"]]);

      await tb.deleteSession({ sessionId });
      const last = (await within(stream.next(), "the other instance's delete")).value;
      expect(last?.type).toBe(WatchEventType.DELETED);
      expect((await within(stream.next(), "the end of the stream")).done).toBe(true);
    } finally {
      watching.abort();
    }
  });

  it("sends a watcher a fresh snapshot when its instance's connection to the bus dropped (changes may have gone unseen)", async () => {
    const sessionId = `cg-${randomBytes(3).toString("hex")}`;
    // Written on the watcher's own instance: no event of another instance's commit can still be on its way.
    await a.client(TranslationService).batchUpsertSessions({ sessions: [session(sessionId)], durability: Durability.COMMITTED });
    const watching = new AbortController();
    const stream = a.client(TranslationService, "grpc").watchSession({ sessionId }, { signal: watching.signal })[Symbol.asyncIterator]();
    try {
      expect((await within(stream.next(), "snapshot")).value?.type).toBe(WatchEventType.SNAPSHOT);
      proxy.dropConnections();
      const again = (await within(stream.next(), "a snapshot after the reconnection")).value;
      expect(again?.type).toBe(WatchEventType.SNAPSHOT);
      expect(again?.session?.sessionId).toBe(sessionId);
    } finally {
      watching.abort();
    }
  });

  it("lists both instances in GetInfo, with what each holds in its buffer", async () => {
    await b.client(TranslationService).batchUpsertTasks({ tasks: [task("ci-b", "T1"), task("ci-b", "T2")], durability: Durability.ACCEPTED });
    const ib = await b.client(SystemService).getInfo({});
    const ia = await a.client(SystemService).getInfo({});
    expect(ia.instances[0]!.id).toBe(ia.instanceId);
    const listed = Object.fromEntries(ia.instances.map((i) => [i.id, i.bufferedRecords]));
    // b holds the two task records (and perhaps the audit module's own entries about the calls).
    expect(Object.keys(listed).sort()).toEqual([ia.instanceId, ib.instanceId].sort());
    expect(listed[ib.instanceId]).toBeGreaterThanOrEqual(2n);
    await b.client(TranslationService).flush({});
  });
});
