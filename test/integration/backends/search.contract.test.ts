import { randomBytes } from "node:crypto";
import { Code, type ConnectError } from "@connectrpc/connect";
import { BadRequestSchema } from "../../../gen/google/rpc/error_details_pb";
import { openSearchIndex } from "../../../server/backends/search/open-search-index";
import type { DeclaredIndex, IndexSchema, SearchDocument, SearchIndex, SearchRequest } from "../../../server/backends/search/search-index";
import type { SqlBackend } from "../../../server/backends/sql/sql-store";
import { openServiceSql } from "../../../server/schema";
import { describeEachBackend, type BackendCase } from "../../support/backends";
import { errorOf } from "../../support/errors";
import { createSqlTarget, DIALECTS, type Dialect, type SqlTarget } from "../../support/sql-targets";

/**
 * The `search` role's contract, run against every implementation that can run here: SQLite (FTS5,
 * trigram), MariaDB (InnoDB FULLTEXT over bigram tokens), and OpenSearch when a cluster is given.
 */

interface Opened {
  readonly search: SearchIndex;
  readonly sql?: SqlBackend;
  readonly target?: SqlTarget;
  /** Every index the run declared, dropped at the end (what cleans a shared OpenSearch cluster). */
  readonly declared: Pick<DeclaredIndex<IndexSchema>, "drop">[];
}

async function dropDeclared(opened: Opened): Promise<void> {
  for (const index of opened.declared) await index.drop();
}

function sqlCase(dialect: Dialect, name: string): BackendCase<Opened> {
  return {
    name,
    skip: DIALECTS.includes(dialect) ? undefined : `TEST_DIALECTS=${process.env.TEST_DIALECTS} leaves out ${dialect}`,
    async open() {
      const target = createSqlTarget(dialect, "search");
      const sql = await openServiceSql(target.url);
      return { search: await openSearchIndex({ sql }), sql, target, declared: [] };
    },
    async close(opened) {
      const { search, sql, target } = opened;
      await dropDeclared(opened);
      await search.close();
      await sql?.close();
      await target?.drop();
    },
  };
}

const OPENSEARCH_URL = process.env.TEST_OPENSEARCH_URL || process.env.PERSISTENCE_OPENSEARCH_URL;

const CASES: BackendCase<Opened>[] = [
  sqlCase("sqlite", "sqlite"),
  sqlCase("mysql", "mariadb"),
  {
    name: "opensearch",
    skip: OPENSEARCH_URL ? undefined : "PERSISTENCE_OPENSEARCH_URL (or TEST_OPENSEARCH_URL) is not set, and no OpenSearch server can run on this machine",
    async open() {
      const search = await openSearchIndex({ opensearchUrl: OPENSEARCH_URL, opensearchPrefix: `pt-${randomBytes(4).toString("hex")}-` });
      await search.ping();
      return { search, declared: [] };
    },
    async close(opened) {
      await dropDeclared(opened);
      await opened.search.close();
    },
  },
];

const AUDIT = {
  time: "occurred_at",
  text: ["message", "user_agent"],
  keyword: ["action", "actor_id", "resource_type", "resource_id", "result", "ip"],
  numeric: ["duration_ms"],
} as const;
type Audit = typeof AUDIT;
type Entry = SearchDocument<Audit>;

const HOUR = 3_600_000;
const DAY = 24 * HOUR;
/** A fixed UTC midnight, so day and hour buckets are known. */
const T0 = Date.UTC(2026, 11, 1);

let sequence = 0;
/** A document of its own: unique id, a time `offset` ms after T0, and the given fields. */
function entry(offset: number, fields: Partial<Omit<Entry, "id" | "occurred_at">> & { id?: string } = {}): Entry {
  sequence += 1;
  return { id: `e${String(sequence).padStart(6, "0")}`, occurred_at: new Date(T0 + offset), action: "session.read", result: "success", ...fields };
}

const ids = (page: { hits: readonly { document: { id: string } }[] }) => page.hits.map((h) => h.document.id);

function violatedFields(err: ConnectError): string[] {
  return err.findDetails(BadRequestSchema).flatMap((d) => d.fieldViolations.map((v) => v.field));
}

describeEachBackend("search", CASES, (opened, backendName) => {
  const remember = (index: Pick<DeclaredIndex<IndexSchema>, "drop">) => opened().declared.push(index);
  /** A fresh logical index for one test, so totals, ranks and counts are its own. */
  async function fresh(): Promise<DeclaredIndex<Audit>> {
    const index = await opened().search.declareIndex(`t_${randomBytes(5).toString("hex")}`, AUDIT);
    remember(index);
    return index;
  }

  it("plays the search role and answers pings", async () => {
    expect(opened().search.name).toBe("search");
    expect(opened().search.kind).toBe(backendName === "mariadb" ? "mysql" : backendName);
    await expect(opened().search.ping()).resolves.toBeUndefined();
  });

  it("declares an index once: the same schema again is a no-op, another schema is refused", async () => {
    const name = `t_${randomBytes(5).toString("hex")}`;
    const first = await opened().search.declareIndex(name, AUDIT);
    remember(first);
    await first.index([entry(0, { message: "kept across declarations" })]);
    const again = await opened().search.declareIndex(name, AUDIT);
    expect((await again.search({ text: "declarations" })).total).toEqual({ value: 1, relation: "eq" });
    const changed = await errorOf(opened().search.declareIndex(name, { ...AUDIT, keyword: ["action"] }));
    expect(changed.code).toBe(Code.FailedPrecondition);
    expect(changed.message).toContain(name);
  });

  it("refuses bad index names and schemas, naming the field", async () => {
    const badName = await errorOf(opened().search.declareIndex("Audit-Logs", AUDIT));
    expect(badName.code).toBe(Code.InvalidArgument);
    expect(violatedFields(badName)).toEqual(["name"]);
    const badSchema = await errorOf(opened().search.declareIndex("t_bad_schema", { time: "at", text: [], keyword: ["id", "at"] }));
    expect(badSchema.code).toBe(Code.InvalidArgument);
    expect(violatedFields(badSchema).sort()).toEqual(["schema.keyword[0]", "schema.keyword[1]", "schema.text"]);
  });

  it("ranks a document that matches more of the terms first", async () => {
    const index = await fresh();
    const three = entry(0, { message: "alpha bravo charlie report" });
    const two = entry(1, { message: "alpha bravo status report" });
    const one = entry(2, { message: "alpha status update report" });
    const fillers = [entry(3, { message: "golf hotel india report" }), entry(4, { message: "juliet kilo lima report" }), entry(5, { message: "mike november oscar report" })];
    await index.index([one, fillers[0]!, two, fillers[1]!, three, fillers[2]!]);

    const any = await index.search({ text: "alpha bravo charlie", operator: "or", sort: "relevance" });
    expect(ids(any)).toEqual([three.id, two.id, one.id]);
    const scores = any.hits.map((h) => h.score!);
    expect(scores[0]).toBeGreaterThan(scores[1]!);
    expect(scores[1]).toBeGreaterThan(scores[2]!);
    expect(any.total).toEqual({ value: 3, relation: "eq" });

    const all = await index.search({ text: "alpha bravo charlie", sort: "relevance" });
    expect(ids(all)).toEqual([three.id]);
  });

  it("pages by relevance with every match once", async () => {
    const index = await fresh();
    // Over three days: each day ranks its own documents, and the pages merge them.
    const docs = Array.from({ length: 13 }, (_, i) => entry(i * 5 * HOUR, { message: `needle ${"needle ".repeat(i % 4)}${"hay ".repeat(i % 5)}` }));
    await index.index([...docs, entry(99_000, { message: "only hay here" })]);
    const seen: string[] = [];
    let pageToken: string | undefined;
    let pages = 0;
    do {
      const page = await index.search({ text: "needle", sort: "relevance", pageSize: 4, ...(pageToken ? { pageToken } : {}) });
      seen.push(...ids(page));
      pageToken = page.nextPageToken;
      pages += 1;
    } while (pageToken && pages < 10);
    expect(pages).toBe(4);
    expect(seen.slice().sort()).toEqual(docs.map((d) => d.id).sort());
  });

  it("combines free text with filters: every term and every filter must hold", async () => {
    const index = await fresh();
    const hit = entry(0, { message: "disk full on volume seven", action: "file.write", actor_id: "u-1", result: "failure", ip: "10.0.0.1", duration_ms: 12 });
    await index.index([
      hit,
      entry(1, { message: "disk full on volume eight", action: "file.write", actor_id: "u-2", result: "failure", ip: "10.0.0.1", duration_ms: 12 }),
      entry(2, { message: "disk full on volume nine", action: "file.write", actor_id: "u-1", result: "success", ip: "10.0.0.1", duration_ms: 12 }),
      entry(3, { message: "disk quota on volume ten", action: "file.write", actor_id: "u-1", result: "failure", ip: "10.0.0.1", duration_ms: 12 }),
      entry(4, { message: "disk full on volume eleven", action: "file.write", actor_id: "u-1", result: "failure", ip: "10.0.0.2", duration_ms: 99 }),
    ]);
    const page = await index.search({
      text: "full disk",
      filters: [
        { field: "actor_id", term: "u-1" },
        { field: "result", term: ["failure", "denied"] },
        { field: "ip", term: "10.0.0.1" },
        { field: "action", prefix: "file." },
        { field: "duration_ms", lt: 50 },
        { field: "occurred_at", gte: new Date(T0) },
      ],
    });
    expect(ids(page)).toEqual([hit.id]);
    expect(page.total).toEqual({ value: 1, relation: "eq" });
    expect(page.hits[0]!.document).toEqual(hit);
    expect(page.hits[0]!.score).toBeUndefined();
    expect((await index.search({ filters: [{ field: "duration_ms", term: 99 }] })).total.value).toBe(1);
  });

  it("filters by keyword prefix, case-sensitive, with % and _ as plain characters", async () => {
    const index = await fresh();
    const del = entry(0, { action: "session.delete" });
    const create = entry(1, { action: "session.create" });
    const underscore = entry(2, { action: "a_b.x" });
    await index.index([del, create, entry(3, { action: "sessions.list" }), entry(4, { action: "Session.delete" }), underscore, entry(5, { action: "axb.x" }), entry(6, { action: "100%" })]);
    const prefix = async (p: string) => ids(await index.search({ filters: [{ field: "action", prefix: p }] })).sort();
    expect(await prefix("session.")).toEqual([del.id, create.id].sort());
    expect(await prefix("session.d")).toEqual([del.id]);
    expect(await prefix("a_")).toEqual([underscore.id]);
    expect(await prefix("%")).toEqual([]);
    expect(await prefix("zzz")).toEqual([]);
    expect(await prefix("\u{10ffff}")).toEqual([]);
  });

  it("bounds time ranges: gte and lte include the bound, gt and lt leave it out", async () => {
    const index = await fresh();
    const docs = [0, 1, 2, 3, 4].map((h) => entry(h * 10 * HOUR));
    await index.index(docs);
    const within = async (range: { gte?: Date; gt?: Date; lte?: Date; lt?: Date }) => ids(await index.search({ filters: [{ field: "occurred_at", ...range }] }));
    const at = (h: number) => new Date(T0 + h * 10 * HOUR);
    expect(await within({ gte: at(1), lt: at(3) })).toEqual([docs[2]!.id, docs[1]!.id]);
    expect(await within({ gt: at(1), lte: at(3) })).toEqual([docs[3]!.id, docs[2]!.id]);
    expect(await within({ gte: at(4) })).toEqual([docs[4]!.id]);
    expect(await within({ lt: at(0) })).toEqual([]);
  });

  it("pages newest first across pages without duplicates or gaps while new documents arrive", async () => {
    const index = await fresh();
    // Over three days, in groups of three that share a time: ties are broken by id, highest first.
    const docs = Array.from({ length: 25 }, (_, i) => entry(Math.floor(i / 3) * 7 * HOUR, { message: `page test ${i}` }));
    await index.index(docs);
    const expected = [...docs].sort((a, b) => b.occurred_at.getTime() - a.occurred_at.getTime() || (a.id < b.id ? 1 : -1)).map((d) => d.id);
    const seen: string[] = [];
    const totals: number[] = [];
    let pageToken: string | undefined;
    let pages = 0;
    do {
      const page = await index.search({ text: "page test", pageSize: 7, ...(pageToken ? { pageToken } : {}) });
      seen.push(...ids(page));
      totals.push(page.total.value);
      pageToken = page.nextPageToken;
      pages += 1;
      // Newer documents arrive between pages: they belong before the pages already served.
      await index.index([entry(5 * DAY + pages * 1000, { message: `page test late ${pages}` })]);
    } while (pageToken && pages < 10);
    expect(pages).toBe(4);
    expect(seen).toEqual(expected);
    expect(totals[0]).toBe(25);
    expect(totals[3]).toBe(28);
    const first = await index.search({ text: "page test", pageSize: 2 });
    expect(ids(first)).toEqual([`e${String(sequence).padStart(6, "0")}`, `e${String(sequence - 1).padStart(6, "0")}`]);
  });

  it("counts totals exactly up to the limit, then as a lower bound", async () => {
    const index = await fresh();
    await index.index(Array.from({ length: 12 }, (_, i) => entry(i * 6 * HOUR, { message: "counted" })));
    expect((await index.search({ text: "counted", totalLimit: 5, pageSize: 2 })).total).toEqual({ value: 5, relation: "gte" });
    expect((await index.search({ text: "counted", totalLimit: 12, pageSize: 2 })).total).toEqual({ value: 12, relation: "eq" });
    expect((await index.search({ text: "counted", pageSize: 2 })).total).toEqual({ value: 12, relation: "eq" });
    expect((await index.search({ text: "uncounted" })).total).toEqual({ value: 0, relation: "eq" });
  });

  it("counts by keyword value, most frequent first, the rest as otherCount", async () => {
    const index = await fresh();
    const spread: [string, number][] = [["b.write", 3], ["a.read", 5], ["d.delete", 1], ["c.list", 2]];
    let i = 0;
    // Spread over three days: counts add up across them.
    const at = () => (i++ * 5 * HOUR) % (3 * DAY);
    const docs = spread.flatMap(([action, n]) => Array.from({ length: n }, () => entry(at(), { action, actor_id: i % 2 ? "odd" : "even", message: "counted entry" })));
    docs.push(entry(at(), { action: null, actor_id: "odd", message: "counted entry" }));
    docs.push(entry(at(), { action: "a.read", message: "other words" }));
    await index.index(docs);
    const result = await index.aggregate({ text: "counted", terms: [{ field: "action", size: 2 }, { field: "actor_id" }] });
    expect(result.total).toBe(12);
    expect(result.terms[0]).toEqual({ field: "action", buckets: [{ value: "a.read", count: 5 }, { value: "b.write", count: 3 }], otherCount: 3 });
    expect(result.terms[1]!.field).toBe("actor_id");
    expect(result.terms[1]!.buckets.reduce((n, b) => n + b.count, 0)).toBe(12);
    expect(result.terms[1]!.otherCount).toBe(0);
    const filtered = await index.aggregate({ filters: [{ field: "action", prefix: "c." }], terms: [{ field: "action" }] });
    expect(filtered.terms[0]!.buckets).toEqual([{ value: "c.list", count: 2 }]);
    expect(result.histogram).toBeUndefined();
  });

  it("counts by hour and by day, buckets aligned to UTC", async () => {
    const index = await fresh();
    const at = [0.1, 0.2, 1.5, 1.9, 1.95, 5, 24.5, 49].map((h) => entry(h * HOUR, { message: "bucketed" }));
    await index.index(at);
    const hourly = await index.aggregate({ text: "bucketed", histogram: { interval: "1h" } });
    expect(hourly.histogram).toEqual([
      { start: new Date(T0), count: 2 },
      { start: new Date(T0 + HOUR), count: 3 },
      { start: new Date(T0 + 5 * HOUR), count: 1 },
      { start: new Date(T0 + 24 * HOUR), count: 1 },
      { start: new Date(T0 + 49 * HOUR), count: 1 },
    ]);
    const daily = await index.aggregate({ histogram: { interval: "1d" }, filters: [{ field: "occurred_at", lt: new Date(T0 + 48 * HOUR) }] });
    expect(daily.histogram).toEqual([
      { start: new Date(T0), count: 6 },
      { start: new Date(T0 + DAY), count: 1 },
    ]);
    const quarter = await index.aggregate({ histogram: { interval: "90m" }, filters: [{ field: "occurred_at", lt: new Date(T0 + 3 * HOUR) }] });
    expect(quarter.histogram).toEqual([
      { start: new Date(T0), count: 2 },
      { start: new Date(T0 + 1.5 * HOUR), count: 3 },
    ]);
  });

  it("re-indexing a document by id replaces it instead of adding another", async () => {
    const index = await fresh();
    const original = entry(0, { message: "first version", action: "task.create" });
    await index.index([original]);
    await index.index([{ ...original, message: "second version", action: "task.update" }]);
    await index.index([{ ...original, message: "third version" }, { ...original, message: "fourth version", action: "task.done" }]);
    expect((await index.search({ text: "version" })).total).toEqual({ value: 1, relation: "eq" });
    expect((await index.search({ text: "first" })).total.value).toBe(0);
    expect((await index.search({ text: "third" })).total.value).toBe(0);
    const [hit] = (await index.search({ text: "fourth" })).hits;
    expect(hit?.document).toEqual({ ...original, message: "fourth version", action: "task.done" });
    const counts = await index.aggregate({ terms: [{ field: "action" }] });
    expect(counts.terms[0]!.buckets).toEqual([{ value: "task.done", count: 1 }]);
  });

  it("finds Chinese and Japanese words inside text written without spaces", async () => {
    const index = await fresh();
    const ja = entry(0, { message: "機械翻訳の品質が向上した" });
    const zh = entry(1, { message: "连接数据库失败，请重试" });
    const mixed = entry(2, { message: "GPT翻訳エンジンを更新" });
    const ko = entry(3, { message: "데이터베이스 연결 실패" });
    await index.index([ja, zh, mixed, ko, entry(4, { message: "machine translation quality" })]);
    const found = async (text: string) => ids(await index.search({ text })).sort();
    expect(await found("翻訳")).toEqual([ja.id, mixed.id].sort());
    expect(await found("機械翻訳")).toEqual([ja.id]);
    expect(await found("品質")).toEqual([ja.id]);
    expect(await found("数据库")).toEqual([zh.id]);
    expect(await found("数据")).toEqual([zh.id]);
    expect(await found("翻訳エンジン")).toEqual([mixed.id]);
    expect(await found("데이터")).toEqual([ko.id]);
    expect(await found("失")).toEqual([zh.id]);
    expect(await found("翻品")).toEqual([]);
    expect(await found("翻訳 品質")).toEqual([ja.id]);
    expect(await found("翻訳 品質 数据库")).toEqual([]);
    expect(ids(await index.search({ text: "数据库 品質", operator: "or" })).sort()).toEqual([ja.id, zh.id].sort());
  });

  it("matches whole words and quoted phrases, case-insensitively; a phrase never spans two fields", async () => {
    const index = await fresh();
    const both = entry(0, { message: "Connection Timeout to db", user_agent: "curl agent" });
    const apart = entry(1, { message: "timeout while waiting for connection", user_agent: "db client" });
    await index.index([both, apart]);
    const found = async (request: SearchRequest<Audit>) => ids(await index.search(request)).sort();
    expect(await found({ text: "CONNECTION timeout" })).toEqual([both.id, apart.id].sort());
    expect(await found({ text: '"connection timeout"' })).toEqual([both.id]);
    expect(await found({ text: "db" })).toEqual([both.id, apart.id].sort());
    expect(await found({ text: "curl db" })).toEqual([both.id]);
    expect(await found({ text: '"db curl"' })).toEqual([]);
    expect(await found({ text: "zz waiting", operator: "or" })).toEqual([apart.id]);
    expect(await found({ text: "db zzz", operator: "or" })).toEqual([both.id, apart.id].sort());
    expect(await found({ text: "   " })).toEqual([both.id, apart.id].sort());
  });

  it("treats SQL-injection-looking and operator-looking input as plain text", async () => {
    const index = await fresh();
    const bobby = entry(0, { message: "Robert'); DROP TABLE students;-- was here", actor_id: "x' OR '1'='1" });
    const plain = entry(1, { message: "an ordinary entry", actor_id: "u-1" });
    await index.index([bobby, plain]);
    expect(ids(await index.search({ text: "Robert'); DROP TABLE students;--" }))).toEqual([bobby.id]);
    // No character is an operator: not OR, not -, not *, not NEAR, not a LIKE wildcard.
    const expected: Record<string, string[]> = {
      "' OR 1=1 --": [],
      "entry)) OR ((1": [],
      "'; SELECT 1; --": [],
      "NEAR(an entry)": [],
      "+ordinary -entry": [plain.id],
      "ordinary*": [plain.id],
      "*": [],
      "%": [],
      _: [],
      "\\": [],
    };
    for (const [text, want] of Object.entries(expected)) expect([text, ids(await index.search({ text }))]).toEqual([text, want]);
    expect(ids(await index.search({ filters: [{ field: "actor_id", term: "x' OR '1'='1" }] }))).toEqual([bobby.id]);
    expect(ids(await index.search({ filters: [{ field: "actor_id", term: "' OR 1=1 --" }] }))).toEqual([]);
    expect(ids(await index.search({ filters: [{ field: "actor_id", prefix: "x' OR" }] }))).toEqual([bobby.id]);
    expect((await index.search({})).total.value).toBe(2);
  });

  it("drops whole days older than the cutoff and deletes documents older than a time", async () => {
    const index = await fresh();
    const day = (d: number, h: number) => entry(d * DAY + h * HOUR, { message: "retained" });
    await index.index([day(0, 1), day(0, 23), day(1, 0), day(1, 5), day(1, 20), day(2, 2), day(2, 12), day(3, 0)]);
    const name = index.name;
    expect(await index.partitions()).toEqual([
      { name: `${name}-2026.12.01`, day: "2026-12-01", documents: 2 },
      { name: `${name}-2026.12.02`, day: "2026-12-02", documents: 3 },
      { name: `${name}-2026.12.03`, day: "2026-12-03", documents: 2 },
      { name: `${name}-2026.12.04`, day: "2026-12-04", documents: 1 },
    ]);
    // Any time in a day names that day: partitions before it go, the day itself stays.
    expect(await index.dropPartitionsBefore(new Date(T0 + DAY + 13 * HOUR))).toEqual([`${name}-2026.12.01`]);
    expect((await index.partitions()).map((p) => p.day)).toEqual(["2026-12-02", "2026-12-03", "2026-12-04"]);
    expect((await index.search({ text: "retained" })).total.value).toBe(6);
    expect(await index.dropPartitionsBefore(new Date(T0 + DAY))).toEqual([]);
    expect(await index.deleteBefore(new Date(T0 + 2 * DAY + 6 * HOUR))).toBe(4);
    expect(await index.partitions()).toEqual([
      { name: `${name}-2026.12.03`, day: "2026-12-03", documents: 1 },
      { name: `${name}-2026.12.04`, day: "2026-12-04", documents: 1 },
    ]);
    expect((await index.search({})).hits.map((h) => h.document.occurred_at.getTime())).toEqual([T0 + 3 * DAY, T0 + 2 * DAY + 12 * HOUR]);
  });

  it("drops a whole index; declaring it again starts empty", async () => {
    const index = await fresh();
    await index.index([entry(0, { message: "to be dropped" })]);
    await index.drop();
    const again = await opened().search.declareIndex(index.name, { time: "at", text: ["body"] });
    remember(again);
    expect((await again.search({})).total.value).toBe(0);
    expect(await again.partitions()).toEqual([]);
  });

  it("refuses invalid requests with INVALID_ARGUMENT naming the field", async () => {
    const index = await fresh();
    await index.index([entry(0, { message: "one" }), entry(1, { message: "two" })]);
    const fields = async (call: Promise<unknown>) => {
      const err = await errorOf(call);
      expect(err.code).toBe(Code.InvalidArgument);
      return violatedFields(err);
    };
    expect(await fields(index.search({ filters: [{ field: "nope" as "action", term: "x" }] }))).toEqual(["filters[0].field"]);
    expect(await fields(index.search({ filters: [{ field: "message" as "action", term: "x" }] }))).toEqual(["filters[0].field"]);
    expect(await fields(index.search({ filters: [{ field: "duration_ms", prefix: "1" } as never] }))).toEqual(["filters[0].prefix"]);
    expect(await fields(index.search({ filters: [{ field: "occurred_at", gte: "yesterday" } as never] }))).toEqual(["filters[0].gte"]);
    expect(await fields(index.search({ filters: [{ field: "action", term: "a", prefix: "b" } as never] }))).toEqual(["filters[0]"]);
    expect(await fields(index.search({ pageSize: 0 }))).toEqual(["pageSize"]);
    expect(await fields(index.search({ totalLimit: -1 }))).toEqual(["totalLimit"]);
    expect(await fields(index.search({ sort: "relevance" }))).toEqual(["sort"]);
    expect(await fields(index.search({ text: "x".repeat(1001) }))).toEqual(["text"]);
    expect(await fields(index.search({ pageToken: "not a token" }))).toEqual(["pageToken"]);
    const first = await index.search({ pageSize: 1 });
    expect(await fields(index.search({ text: "one", pageSize: 1, pageToken: first.nextPageToken! }))).toEqual(["pageToken"]);
    expect(await fields(index.aggregate({ histogram: { interval: "1w" } }))).toEqual(["histogram.interval"]);
    expect(await fields(index.aggregate({ terms: [{ field: "duration_ms" as "action" }] }))).toEqual(["terms[0].field"]);
    expect(await fields(index.index([{ ...entry(0), id: "has space" }]))).toEqual(["documents[0].id"]);
    expect(await fields(index.index([entry(0), { ...entry(0), occurred_at: new Date(NaN) }]))).toEqual(["documents[1].occurred_at"]);
    expect(await fields(index.index([{ ...entry(0), duration_ms: "12" as unknown as number, colour: "red" } as Entry]))).toEqual([
      "documents[0].duration_ms",
      "documents[0].colour",
    ]);
    expect(await fields(index.index([entry(0, { action: "x".repeat(256) })]))).toEqual(["documents[0].action"]);
    expect(await fields(index.dropPartitionsBefore(new Date("not a date")))).toEqual(["day"]);
    expect((await index.search({})).total.value).toBe(2);
  });
});
