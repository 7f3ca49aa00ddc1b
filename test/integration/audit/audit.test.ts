import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import { Code } from "@connectrpc/connect";
import { sql } from "kysely";
import { BadRequestSchema } from "../../../gen/google/rpc/error_details_pb";
import { AuditResult, AuditService, type VerifyAuditChainResponse, type WriteLogsResponse } from "../../../gen/persistence/v1/audit_pb";
import { Durability } from "../../../gen/persistence/v1/common_pb";
import { TranslationService } from "../../../gen/persistence/v1/translation_pb";
import type { SqlBackend } from "../../../server/backends/sql/sql-store";
import { entryHash } from "../../../server/audit/audit.chain";
import type { AuditTables } from "../../../server/audit/audit.fields";
import { AUDIT_INDEX, AUDIT_SCHEMA, createAuditProjection } from "../../../server/audit/audit.projection";
import { createLogger } from "../../../server/core/logger";
import { enforceRetention } from "../../../server/audit/audit.retention";
import { createSqlSearchIndex } from "../../../server/backends/search/sql";
import { openServiceSql } from "../../../server/schema";
import { errorOf } from "../../support/errors";
import { restCall } from "../../support/rest-call";
import { secret } from "../../support/secrets";
import { describeEachDialect } from "../../support/sql-targets";
import { eventually } from "../../support/wait";
import { startTestServer, type TestServer } from "../../support/test-server";

let unique = 0;
/** A tag no other test uses: tests filter on it (actor id), so they own their entries. */
const newTag = () => `t-${process.pid}-${Date.now().toString(36)}-${++unique}`;

function entry(actor: string, extra: Record<string, unknown> = {}) {
  return {
    action: "session.delete",
    result: AuditResult.SUCCESS,
    actor: { type: "user", id: actor, name: "Alice" },
    resource: { type: "session", id: `s-${++unique}` },
    ip: "10.0.0.7",
    message: "deleted a session",
    ...extra,
  };
}

/** A download: status, headers and body text (not JSON). */
async function download(base: string, path: string) {
  const res = await fetch(`${base}${path}`);
  return { status: res.status, headers: res.headers, text: await res.text() };
}

describeEachDialect("audit", (target) => {
  let server: TestServer;
  let store: SqlBackend;
  const audit = () => server.client(AuditService);

  beforeAll(async () => {
    server = await startTestServer({ PERSISTENCE_SQL_URL: target().url, PERSISTENCE_FLUSH_INTERVAL_MS: "60000", PERSISTENCE_AUDIT_RETENTION_INTERVAL_MS: "0" });
    store = await openServiceSql(target().url);
  });
  afterAll(async () => {
    await store?.close();
    await server?.close();
  });

  it("stores a batch at COMMITTED and finds it by actor, action prefix, resource, result and ip", async () => {
    const actor = newTag();
    const written = await audit().writeLogs({
      entries: [
        entry(actor, { action: "session.delete", resource: { type: "session", id: "s-1" } }),
        entry(actor, { action: "session.cleanup", result: AuditResult.FAILURE, ip: "10.0.0.8" }),
        entry(actor, { action: "file.delete", resource: { type: "file", id: "f-1" } }),
      ],
      durability: Durability.COMMITTED,
    });
    expect(written).toMatchObject({ status: "accepted", count: 3, durability: Durability.COMMITTED });
    expect(written.ids).toHaveLength(3);

    const all = await audit().searchLogs({ actorId: actor });
    expect(Number(all.total)).toBe(3);
    // Newest first: one batch shares its commit, so ties go by occurred_at then id; all three are there.
    expect(all.items.map((i) => i.id).sort()).toEqual([...written.ids].sort());
    expect(all.items.every((i) => i.seq > 0n && i.hash.length === 64 && i.prevHash.length === 64)).toBe(true);

    expect((await audit().searchLogs({ actorId: actor, action: "session." })).items.map((i) => i.action).sort()).toEqual(["session.cleanup", "session.delete"]);
    expect((await audit().searchLogs({ actorId: actor, resourceType: "file" })).items.map((i) => i.id)).toEqual([written.ids[2]]);
    expect((await audit().searchLogs({ actorId: actor, resourceType: "session", resourceId: "s-1" })).items.map((i) => i.id)).toEqual([written.ids[0]]);
    expect((await audit().searchLogs({ actorId: actor, result: AuditResult.FAILURE })).items.map((i) => i.id)).toEqual([written.ids[1]]);
    expect((await audit().searchLogs({ actorId: actor, ip: "10.0.0.8" })).items.map((i) => i.id)).toEqual([written.ids[1]]);
  });

  it("finds Chinese words inside messages, and English words, by free text", async () => {
    const actor = newTag();
    const { ids } = await audit().writeLogs({
      entries: [
        entry(actor, { message: "管理员删除了翻译会话 quests.xlsx" }),
        entry(actor, { message: "用户上传了文件" }),
        entry(actor, { message: "Session exported by the night job" }),
      ],
      durability: Durability.COMMITTED,
    });
    const find = async (q: string) => (await audit().searchLogs({ actorId: actor, q })).items.map((i) => i.id).sort();
    expect(await find("删除")).toEqual([ids[0]]);
    expect(await find("翻译会话")).toEqual([ids[0]]);
    expect(await find("上传")).toEqual([ids[1]]);
    expect(await find("文件")).toEqual([ids[1]]);
    expect(await find("exported")).toEqual([ids[2]]);
    expect(await find("会话 quests")).toEqual([ids[0]]);
    expect(await find("登录")).toEqual([]);
    expect(await find("imported")).toEqual([]);
  });

  it("bounds searches by time and pages through them with a cursor and a total", async () => {
    const actor = newTag();
    const base = Date.parse("2026-03-01T00:00:00Z");
    const entries = Array.from({ length: 7 }, (_, n) => entry(actor, { occurredAt: timestampFromMs(base + n * 3_600_000) }));
    const { ids } = await audit().writeLogs({ entries, durability: Durability.COMMITTED });
    const seen: string[] = [];
    let pageToken = "";
    do {
      const page = await audit().searchLogs({ actorId: actor, pageSize: 3, pageToken });
      expect(Number(page.total)).toBe(7);
      seen.push(...page.items.map((i) => i.id));
      pageToken = page.nextPageToken;
    } while (pageToken);
    // Newest first.
    expect(seen).toEqual([...ids].reverse());
    const ranged = await audit().searchLogs({ actorId: actor, from: timestampFromMs(base + 2 * 3_600_000), to: timestampFromMs(base + 5 * 3_600_000) });
    expect(ranged.items.map((i) => i.id)).toEqual([ids[4], ids[3], ids[2]]);
  });

  it("answers the REST paths with the original dialect: snake_case, result names, RFC 3339 times", async () => {
    const actor = newTag();
    const written = await restCall(server.url, "POST", "/api/v1/audit/logs/batch", {
      entries: [{ action: "user.login", result: "failure", actor: { type: "user", id: actor }, message: "wrong password", occurred_at: "2026-05-01T10:00:00Z", details: { attempts: 3 } }],
      durability: "committed",
    });
    expect(written.status).toBe(200);
    expect(written.json).toMatchObject({ status: "accepted", count: 1, durability: "committed" });
    const found = await restCall(server.url, "GET", `/api/v1/audit/logs?actor_id=${actor}&result=failure&from=2026-05-01&to=2026-05-02&page_size=10`);
    expect(found.status).toBe(200);
    expect(found.json.total).toBe(1);
    expect(found.json.items[0]).toMatchObject({
      id: written.json.ids[0],
      action: "user.login",
      result: "failure",
      actor: { type: "user", id: actor },
      message: "wrong password",
      occurred_at: "2026-05-01T10:00:00Z",
      details: { attempts: 3 },
    });
  });

  it("refuses a bad batch whole, naming each field, and stores nothing of it", async () => {
    const actor = newTag();
    const err = await errorOf(
      audit().writeLogs({
        entries: [entry(actor), { ...entry(actor), action: "" }, { ...entry(actor), actor: { id: "x".repeat(129) } }, { ...entry(actor), result: AuditResult.UNSPECIFIED }, { ...entry(actor), id: "bad id" }],
        durability: Durability.COMMITTED,
      }),
    );
    expect(err.code).toBe(Code.InvalidArgument);
    const fields = err.findDetails(BadRequestSchema).flatMap((d) => d.fieldViolations.map((v) => v.field));
    expect(fields).toEqual(expect.arrayContaining(["entries[1].action", "entries[2].actor.id", "entries[3].result", "entries[4].id"]));
    expect(Number((await audit().searchLogs({ actorId: actor })).total)).toBe(0);
    const rest = await restCall(server.url, "POST", "/api/v1/audit/logs/batch", { entries: [{ result: "success" }] });
    expect(rest.status).toBe(400);
  });

  it("stores an entry once however often its id is written", async () => {
    const actor = newTag();
    const id = `dup-${actor}`;
    await audit().writeLogs({ entries: [entry(actor, { id, message: "first" })], durability: Durability.COMMITTED });
    await audit().writeLogs({ entries: [entry(actor, { id, message: "second" })], durability: Durability.COMMITTED });
    const { rows } = await sql<{ message: string }>`select message from audit_logs where id = ${id}`.execute(store.db);
    expect(rows.map((r) => r.message)).toEqual(["first"]);
    expect((await audit().verifyAuditChain({})).ok).toBe(true);
  });

  it("chains entries in commit order and verifies; an entry altered in SQL is named as the first broken link", async () => {
    const actor = newTag();
    const { ids } = await audit().writeLogs({ entries: [entry(actor), entry(actor), entry(actor)], durability: Durability.COMMITTED });
    const ok = await restCall(server.url, "GET", "/api/v1/audit/verify");
    expect(ok.json).toMatchObject({ ok: true });
    expect(ok.json.checked).toBeGreaterThanOrEqual(3);
    expect(ok.json.first_broken ?? null).toBeNull();

    const { rows } = await sql<{ seq: number; message: string }>`select seq, message from audit_logs where id = ${ids[1]!}`.execute(store.db);
    const { seq, message } = rows[0]!;
    await sql`update audit_logs set message = ${"nothing happened"} where id = ${ids[1]!}`.execute(store.db);
    try {
      const broken = await restCall(server.url, "GET", "/api/v1/audit/verify");
      expect(broken.json).toMatchObject({ ok: false, first_broken: { seq: Number(seq), id: ids[1], reason: "hash" } });
      expect(broken.json.checked).toBe(Number(seq) - 1);
    } finally {
      await sql`update audit_logs set message = ${message} where id = ${ids[1]!}`.execute(store.db);
    }
    expect((await audit().verifyAuditChain({})).ok).toBe(true);
  });

  it("names a removed entry's position as missing, and a re-hashed one by the link after it", async () => {
    const actor = newTag();
    const { ids } = await audit().writeLogs({ entries: [entry(actor), entry(actor), entry(actor)], durability: Durability.COMMITTED });
    const row = (await sql<Record<string, unknown>>`select * from audit_logs where id = ${ids[1]!}`.execute(store.db)).rows[0]!;
    await sql`delete from audit_logs where id = ${ids[1]!}`.execute(store.db);
    try {
      const report = await audit().verifyAuditChain({});
      expect(report.ok).toBe(false);
      expect(report.firstBroken).toMatchObject({ seq: BigInt(Number(row.seq)), reason: "missing" });
    } finally {
      await store.db.insertInto("audit_logs" as never).values(row as never).execute();
    }
    // Forged: a new message and the hash recomputed for it. The entry after it no longer follows.
    const forged = entryHash(String(row.prev_hash), { ...row, message: "nothing happened" });
    await sql`update audit_logs set message = ${"nothing happened"}, hash = ${forged} where id = ${ids[1]!}`.execute(store.db);
    try {
      const report = await audit().verifyAuditChain({});
      expect(report.firstBroken).toMatchObject({ id: ids[2], reason: "prev_hash" });
    } finally {
      await sql`update audit_logs set message = ${String(row.message)}, hash = ${String(row.hash)} where id = ${ids[1]!}`.execute(store.db);
    }
    expect((await audit().verifyAuditChain({})).ok).toBe(true);
  });

  it("chains an explicit gap entry for an entry the database refuses, and the chain still verifies", async () => {
    const actor = newTag();
    const poisoned = `poison-${actor}`;
    const trigger = `audit_poison_${unique}`;
    if (store.dialect === "mysql") {
      await sql.raw(`create trigger ${trigger} before insert on audit_logs for each row
        if new.id = '${poisoned}' then signal sqlstate '45000' set message_text = 'poisoned row'; end if`).execute(store.db);
    } else {
      await sql.raw(`create trigger ${trigger} before insert on audit_logs when new.id = '${poisoned}' begin select raise(abort, 'poisoned row'); end`).execute(store.db);
    }
    try {
      await audit().writeLogs({ entries: [entry(actor), entry(actor, { id: poisoned }), entry(actor)], durability: Durability.COMMITTED });
    } finally {
      await sql.raw(`drop trigger ${trigger}`).execute(store.db);
    }
    const stored = await audit().searchLogs({ actorId: actor });
    expect(Number(stored.total)).toBe(2);
    const { rows: letters } = await sql<{ id: number }>`select id from dead_letters where write_path = 'audit' and record_key = ${JSON.stringify([poisoned])}`.execute(store.db);
    expect(letters).toHaveLength(1);
    // The gap entry is written at the service's default durability once the dead letter is seen: wait for it through searches.
    let gap;
    for (let i = 0; i < 600 && !gap; i++) {
      gap = (await audit().searchLogs({ action: "audit.gap", resourceId: poisoned })).items[0];
      if (!gap) await new Promise((r) => setTimeout(r, 50));
    }
    expect(gap).toMatchObject({ id: `gap-audit-${letters[0]!.id}`, result: AuditResult.FAILURE, resource: { type: "audit_entry", id: poisoned } });
    expect(gap!.message).toContain("poisoned row");
    expect((await audit().verifyAuditChain({})).ok).toBe(true);
  });

  it("exports every matching entry as NDJSON or CSV over REST, and as a stream over the RPC", async () => {
    const actor = newTag();
    const entries = Array.from({ length: 1203 }, (_, n) => entry(actor, { message: n === 5 ? "含有 \"引号\", 逗号\n和换行" : `entry ${n}` }));
    const ids: string[] = [];
    for (let i = 0; i < entries.length; i += 1000) ids.push(...(await audit().writeLogs({ entries: entries.slice(i, i + 1000), durability: Durability.COMMITTED })).ids);
    const ndjson = await download(server.url, `/api/v1/audit/logs/export?format=ndjson&actor_id=${actor}`);
    expect(ndjson.status).toBe(200);
    expect(ndjson.headers.get("content-type")).toBe("application/x-ndjson");
    const lines = ndjson.text.trimEnd().split("\n").map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(lines.map((l) => l.id)).toEqual(ids);
    expect(lines[5]).toMatchObject({ message: "含有 \"引号\", 逗号\n和换行", result: "success", actor: { id: actor } });

    const csv = await download(server.url, `/api/v1/audit/logs/export?format=csv&actor_id=${actor}`);
    expect(csv.headers.get("content-type")).toBe("text/csv; charset=utf-8");
    expect(csv.text.startsWith("id,seq,occurred_at,")).toBe(true);
    expect(csv.text).toContain(`"含有 ""引号"", 逗号\n和换行"`);
    // Header plus one record per entry (the quoted line break does not end a record).
    expect(csv.text.split("\r\n").filter(Boolean)).toHaveLength(1 + ids.length);

    const streamed: string[] = [];
    for await (const batch of audit().exportLogs({ actorId: actor })) streamed.push(...batch.entries.map((e) => e.id));
    expect(streamed).toEqual(ids);
    const withText: string[] = [];
    for await (const batch of audit().exportLogs({ actorId: actor, q: "引号" })) withText.push(...batch.entries.map((e) => e.id));
    expect(withText).toEqual([ids[5]]);

    const bad = await download(server.url, "/api/v1/audit/logs/export?format=xml");
    expect(bad.status).toBe(400);
    expect(bad.text).toContain("format");
  });

  it("counts entries by action, result, actor and time bucket", async () => {
    const actor = newTag();
    const base = Date.parse("2026-04-01T00:00:00Z");
    await audit().writeLogs({
      entries: [
        entry(actor, { action: "file.delete", occurredAt: timestampFromMs(base) }),
        entry(actor, { action: "file.delete", occurredAt: timestampFromMs(base + 60_000) }),
        entry(actor, { action: "user.delete", result: AuditResult.FAILURE, occurredAt: timestampFromMs(base + 2 * 86_400_000) }),
      ],
      durability: Durability.COMMITTED,
    });
    const stats = await restCall(server.url, "GET", `/api/v1/audit/stats?actor_id=${actor}&interval=1d`);
    expect(stats.status).toBe(200);
    expect(stats.json).toMatchObject({
      total: 3,
      by_action: [
        { value: "file.delete", count: 2 },
        { value: "user.delete", count: 1 },
      ],
      by_result: [
        { value: "success", count: 2 },
        { value: "failure", count: 1 },
      ],
      by_actor: [{ value: actor, count: 3 }],
      by_time: [
        { start: "2026-04-01T00:00:00Z", count: 2 },
        { start: "2026-04-03T00:00:00Z", count: 1 },
      ],
    });
    expect((await restCall(server.url, "GET", "/api/v1/audit/stats?interval=1w")).status).toBe(400);
  });

  it("audits reads of the audit logs themselves", async () => {
    const marker = newTag();
    await audit().searchLogs({ q: marker });
    // The read's own entry is buffered before the reply; a COMMITTED write behind it commits it too.
    await audit().writeLogs({ entries: [entry(marker)], durability: Durability.COMMITTED });
    const page = await audit().searchLogs({ action: "audit.logs.search", q: marker });
    expect(page.items.map((e) => e.details)).toEqual([expect.objectContaining({ query: marker })]);
  });
});

describeEachDialect("audit-lifecycle", (target) => {
  let store: SqlBackend;
  const env = () => ({ PERSISTENCE_SQL_URL: target().url, PERSISTENCE_AUDIT_RETENTION_INTERVAL_MS: "0" });

  beforeAll(async () => {
    store = await openServiceSql(target().url);
  });
  afterAll(async () => {
    await store?.close();
  });

  it("rebuilds a lost search index from the SQL record at the next start", async () => {
    const actor = newTag();
    let server = await startTestServer(env());
    let ids: string[];
    try {
      ({ ids } = await server.client(AuditService).writeLogs({ entries: [entry(actor, { message: "重建索引" }), entry(actor)], durability: Durability.COMMITTED }));
      expect(Number((await server.client(AuditService).searchLogs({ actorId: actor })).total)).toBe(2);
    } finally {
      await server.close();
    }
    // The index is gone and its checkpoint says nothing was ever projected.
    const index = await createSqlSearchIndex(store).declareIndex(AUDIT_INDEX, AUDIT_SCHEMA);
    await index.drop();
    await sql`update audit_projection set seq = 0`.execute(store.db);

    server = await startTestServer(env());
    try {
      const found = await server.client(AuditService).searchLogs({ actorId: actor, q: "索引" });
      expect(found.items.map((i) => i.id)).toEqual([ids[0]]);
      expect(Number((await server.client(AuditService).searchLogs({ actorId: actor })).total)).toBe(2);
    } finally {
      await server.close();
    }
  });

  it("projects a backlog only once the service serves, so start-up never waits for it", async () => {
    const actor = newTag();
    const server = await startTestServer(env());
    try {
      await server.client(AuditService).writeLogs({ entries: [entry(actor, { message: "积压的条目" }), entry(actor), entry(actor)], durability: Durability.COMMITTED });
    } finally {
      await server.close();
    }
    const search = createSqlSearchIndex(store);
    await (await search.declareIndex(AUDIT_INDEX, AUDIT_SCHEMA)).drop();
    await sql`update audit_projection set seq = 0`.execute(store.db);

    let nowServing = () => {};
    const serving = new Promise<void>((resolve) => (nowServing = resolve));
    const projection = await createAuditProjection(store.db.withTables<AuditTables>(), search, createLogger("silent"), serving);
    const backlog = await projection.lag();
    expect(backlog).toBeGreaterThanOrEqual(3);
    const run = projection.catchUp();
    // Start-up goes on: nothing is projected while the service is not serving yet.
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(await projection.lag()).toBe(backlog);
    nowServing();
    await run;
    expect(await projection.lag()).toBe(0);
    const found = await projection.index.search({ text: "积压", filters: [{ field: "actor_id", term: actor }] });
    expect(found.hits).toHaveLength(1);
    await projection.stop();

    // A start-up that fails before serving still stops: a run waiting for `serving` ends at stop.
    const never = await createAuditProjection(store.db.withTables<AuditTables>(), search, createLogger("silent"), new Promise(() => {}));
    const waiting = never.catchUp();
    await never.stop();
    await expect(waiting).resolves.toBeUndefined();
  });

  it("removes whole days past the retention, and the rest of the chain still verifies from its new anchor", async () => {
    const actor = newTag();
    let server = await startTestServer(env());
    let old: WriteLogsResponse;
    let before: VerifyAuditChainResponse;
    try {
      const audit = server.client(AuditService);
      old = await audit.writeLogs({ entries: [entry(actor), entry(actor), entry(actor)], durability: Durability.COMMITTED });
      before = await audit.verifyAuditChain({});
      expect(before.ok).toBe(true);
    } finally {
      await server.close();
    }
    // Three days from now, one day of retention: every entry stored so far is past it, today's partition
    // included (a real run never reaches today; the service runs it itself, so no instance holds a stale view).
    const db = store.db.withTables<AuditTables>();
    const index = await createSqlSearchIndex(store).declareIndex(AUDIT_INDEX, AUDIT_SCHEMA);
    // What the stopped service left: the three entries and its own entries about the verification.
    const stored = Number((await sql<{ n: number }>`select count(*) as n from audit_logs`.execute(store.db)).rows[0]!.n);
    expect(stored).toBeGreaterThanOrEqual(3);
    const result = await enforceRetention(db, index, 1, Date.now() + 3 * 86_400_000);
    expect(result.removed).toBe(stored);
    expect(result.droppedPartitions.every((p) => p.startsWith("audit_logs-"))).toBe(true);
    const { rows } = await sql<{ n: number }>`select count(*) as n from audit_logs`.execute(store.db);
    expect(Number(rows[0]!.n)).toBe(0);

    server = await startTestServer(env());
    try {
      const audit = server.client(AuditService);
      const anchored = await audit.verifyAuditChain({});
      expect(anchored).toMatchObject({ ok: true, checked: 0n });
      expect(anchored.anchorSeq).toBeGreaterThanOrEqual(before.headSeq);
      const fresh = await audit.writeLogs({ entries: [entry(actor)], durability: Durability.COMMITTED });
      const after = await audit.verifyAuditChain({});
      // The new entry, and the service's own entries about the verifications, follow the anchor.
      expect(after).toMatchObject({ ok: true, anchorSeq: anchored.anchorSeq });
      expect(after.checked).toBe(after.headSeq - anchored.anchorSeq);
      expect(after.checked).toBeGreaterThanOrEqual(1n);
      await eventually(async () => (await audit.searchLogs({ actorId: actor })).items.length > 0);
      expect((await audit.searchLogs({ actorId: actor })).items.map((i) => i.id)).toEqual(fresh.ids);
      expect(old.ids.length).toBe(3);
    } finally {
      await server.close();
    }
  });
});

describeEachDialect("audit-access", (target) => {
  const KEYS = { auditor: secret("auditor-key-0123456789abcdef"), reader: secret("reader-key-0123456789abcdefg") };
  let server: TestServer;
  const as = (key: string) => ({ headers: { authorization: `Bearer ${key}` } });

  beforeAll(async () => {
    server = await startTestServer({
      PERSISTENCE_SQL_URL: target().url,
      PERSISTENCE_AUDIT_RETENTION_INTERVAL_MS: "0",
      // Every read sampled too, so the test can find its own.
      PERSISTENCE_AUDIT_ACCESS_SAMPLE_READS: "1",
      PERSISTENCE_API_KEYS: JSON.stringify([
        { name: "auditor", key: KEYS.auditor, scopes: ["audit:admin"] },
        { name: "reader", key: KEYS.reader, scopes: ["translation:read"] },
      ]),
    });
  });
  afterAll(async () => {
    await server?.close();
  });

  it("logs API calls in the access log, with caller, code and duration", async () => {
    const audit = server.client(AuditService);
    const requestId = `req-${newTag()}`;
    await audit.writeLogs({ entries: [entry(newTag())] }, { headers: { ...as(KEYS.auditor).headers, "x-request-id": requestId } });
    const found = await audit.searchLogs({ log: "access", resourceId: "/persistence.v1.AuditService/WriteLogs", actorId: "auditor" }, as(KEYS.auditor));
    const call = found.items.find((e) => e.requestId === requestId);
    expect(call).toMatchObject({ action: "api.call", result: AuditResult.SUCCESS, actor: { type: "api_key", id: "auditor" }, resource: { type: "rpc" } });
    expect(call!.details).toMatchObject({ code: "ok", protocol: "connect" });
    const stats = await audit.getAuditStats({ log: "access", actorId: "auditor" }, as(KEYS.auditor));
    expect(Number(stats.total)).toBeGreaterThanOrEqual(1);
    const bad = await errorOf(audit.searchLogs({ log: "elsewhere" }, as(KEYS.auditor)));
    expect(bad.code).toBe(Code.InvalidArgument);
  });

  it("records calls refused for their credentials in the audit log", async () => {
    const audit = server.client(AuditService);
    const requestId = `req-${newTag()}`;
    const refused = await errorOf(audit.searchLogs({}, { headers: { ...as(KEYS.reader).headers, "x-request-id": requestId } }));
    expect(refused.code).toBe(Code.PermissionDenied);
    // The refusal's entry is taken before the reply; a COMMITTED write behind it commits it.
    await audit.writeLogs({ entries: [entry(newTag())], durability: Durability.COMMITTED }, as(KEYS.auditor));
    const denied = await audit.searchLogs({ action: "access.denied", pageSize: 1000 }, as(KEYS.auditor));
    const refusal = denied.items.find((e) => e.requestId === requestId);
    expect(refusal).toMatchObject({ result: AuditResult.FAILURE, resource: { type: "rpc", id: "/persistence.v1.AuditService/SearchLogs" } });
    expect(refusal!.message).toContain('API key "reader" lacks the scope audit:read');
    expect((await audit.verifyAuditChain({}, as(KEYS.auditor))).ok).toBe(true);
  });
});

describeEachDialect("audit-actions", (target) => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startTestServer({ PERSISTENCE_SQL_URL: target().url, PERSISTENCE_AUDIT_RETENTION_INTERVAL_MS: "0", PERSISTENCE_AUDIT_ACCESS_SAMPLE_WRITES: "0" });
  });
  afterAll(async () => {
    await server?.close();
  });

  it("records other modules' significant actions (a session delete, a cleanup) in the audit log, sampled or not", async () => {
    const sessionId = `s-${newTag()}`;
    const translation = server.client(TranslationService);
    await translation.batchUpsertSessions({ sessions: [{ sessionId, filename: "quests.xlsx" }], durability: Durability.COMMITTED });
    await translation.deleteSession({ sessionId, soft: true });
    await translation.cleanupSessions({ dryRun: true });
    const audit = server.client(AuditService);
    await audit.writeLogs({ entries: [entry(newTag())], durability: Durability.COMMITTED });
    const deleted = await audit.searchLogs({ action: "session.delete", resourceId: sessionId });
    expect(deleted.items).toHaveLength(1);
    expect(deleted.items[0]).toMatchObject({ result: AuditResult.SUCCESS, resource: { type: "session", id: sessionId }, details: { soft: true, code: "ok" } });
    const cleanup = await audit.searchLogs({ action: "session.cleanup" });
    expect(cleanup.items[0]?.details).toMatchObject({ dry_run: true });
    // The sampling leaves calls with side effects out of the access log here; the audit log has them still.
    expect(Number((await audit.searchLogs({ log: "access", resourceId: "/persistence.v1.TranslationService/DeleteSession" })).total)).toBe(0);
  });
});
