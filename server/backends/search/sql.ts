import { sql, type Kysely, type RawBuilder, type Transaction } from "kysely";
import { failedPrecondition } from "../../core/errors.js";
import type { SqlBackend } from "../sql/sql-store.js";
import { createDeclaredIndex } from "./declared-index.js";
import type { SearchIndex } from "./search-index.js";
import {
  checkIndexName,
  dayOf,
  normalizeSchema,
  schemaDefinition,
  type EngineHit,
  type Filter,
  type IndexEngine,
  type MatchPlan,
  type Schema,
  type SearchPlan,
  type SortKey,
  type StoredDocument,
} from "./search-plan.js";
import { tokenize, type TextTerm } from "./text-terms.js";

/**
 * The embedded `search` implementation over the SQL store: one table per logical index and UTC
 * day (`search_<index>_<yyyymmdd>`), made on the first write of that day and listed in
 * `search_partitions`; `search_indexes` records each index's schema.
 * - SQLite: the day's table (time, keyword and numeric columns) beside an FTS5 table
 *   `..._text` with the trigram tokenizer, so any substring of three or more characters, CJK
 *   included, is found through the index; bm25 ranks.
 * - MariaDB: the text columns and `search_tokens` in the day's table, an InnoDB FULLTEXT index
 *   over the tokens of `text-terms.ts` (words, CJK bigrams). MariaDB has no n-gram parser (that is
 *   MySQL's), so the bigrams are made here; each token is spelled in `[a-z0-9_]` behind a prefix,
 *   which keeps it clear of the stopword list and the minimum token size.
 * Why by day: a full-text match costs in proportion to the matching rows of the table it runs on
 * (InnoDB's FULLTEXT collects every match before any ORDER BY or LIMIT), so bounded tables keep a
 * newest-first page cheap: it reads the newest days until the page is full. Retention drops whole
 * tables, which leaves no deleted rows behind in a full-text index.
 */
export function createSqlSearchIndex(backend: SqlBackend): SearchIndex {
  const db = backend.db;
  const dialect: Dialect = backend.dialect === "mysql" ? mysqlDialect : sqliteDialect;
  return {
    name: "search",
    kind: backend.dialect,
    ping: () => backend.ping(),
    // The SQL store belongs to its opener.
    close: async () => {},
    async declareIndex(name, declared) {
      checkIndexName(name);
      const schema = normalizeSchema(declared);
      const definition = schemaDefinition(schema);
      await sql`create table if not exists search_indexes (name varchar(64) not null primary key, definition text not null)`.execute(db);
      await sql`create table if not exists search_partitions (name varchar(64) not null, day char(10) not null, primary key (name, day))`.execute(db);
      const stored = async () =>
        (await sql<{ definition: string }>`select definition from search_indexes where name = ${name}`.execute(db)).rows[0]?.definition;
      const check = (found: string | undefined) => {
        if (found !== undefined && found !== definition) {
          throw failedPrecondition(`search index ${name} exists with another schema`, {
            type: "SEARCH_SCHEMA",
            subject: `search index ${name}`,
            description: `declared ${definition}, stored ${found}`,
          });
        }
      };
      check(await stored());
      await sql`insert into search_indexes (name, definition) values (${name}, ${definition}) ${dialect.ignoreDuplicate}`.execute(db);
      check(await stored());
      const tables = await dialect.tables(db, schema);
      const ofDay = (day: string) => tables(`search_${name}_${day.replaceAll("-", "")}`);
      return createDeclaredIndex(name, declared, schema, partitionedEngine(db, name, schema, dialect, ofDay));
    },
  };
}

/** One day's tables, as a dialect builds, fills and reads them. */
interface DayTables {
  create(): Promise<void>;
  drop(): Promise<void>;
  write(trx: Transaction<unknown>, documents: readonly StoredDocument[]): Promise<void>;
  /**
   * The rows matching a plan's text (alias `m` for the documents); their relevance only when `use.rank`
   * (a time-ordered page or a count has no use for it), their text columns only when `use.text`.
   */
  source(plan: MatchPlan, use?: SourceUse): Source;
  /** Deletes up to DELETE_BATCH documents older than `time`; returns how many. */
  deleteBatch(time: number): Promise<number>;
  /** A `select count(*)` source: the documents table. */
  readonly docs: RawBuilder<unknown>;
}

/** What a statement reads of a source besides the matching rows. */
interface SourceUse {
  readonly rank: boolean;
  readonly text: boolean;
}
/** A page ranked by relevance. */
const RANKED_PAGE: SourceUse = { rank: true, text: true };
/** A page newest first. */
const TIMED_PAGE: SourceUse = { rank: false, text: true };
/** A count or an aggregation. */
const MATCHES_ONLY: SourceUse = { rank: false, text: false };

interface Source {
  readonly from: RawBuilder<unknown>;
  /** Conditions on the text, beyond what `from` already restricts. */
  readonly where: readonly RawBuilder<unknown>[];
  /** The relevance expression, and which way is better. */
  readonly score: RawBuilder<unknown>;
  readonly better: "lower" | "higher";
  /** Text columns to read, qualified. */
  readonly textColumns: readonly RawBuilder<unknown>[];
}

interface Dialect {
  readonly ignoreDuplicate: RawBuilder<unknown>;
  /** The tables of one day, by name; reads once what the dialect needs for an index (MariaDB: its token sizes). */
  tables(db: Kysely<unknown>, schema: Schema): Promise<(table: string) => DayTables>;
  /** `column div size`. */
  intDiv(column: RawBuilder<unknown>, size: number): RawBuilder<unknown>;
  /** The error a statement gets when a day's table is gone (dropped by retention meanwhile). */
  isMissingTable(err: unknown): boolean;
}

/** Rows deleted per statement, so that retention holds no lock for long. */
const DELETE_BATCH = 1000;
/** Documents per insert statement (SQLite allows 32,766 variables; MySQL 65,535 placeholders). */
const MAX_ROWS_PER_STATEMENT = 500;
/** Days per UNION ALL (SQLite allows 500 terms in one compound select). */
const UNION_TERMS = 400;

const ref = (column: string) => sql.ref(column);
const col = (alias: string, column: string) => sql.ref(`${alias}.${column}`);

// ---------------------------------------------------------------------------------------------
// Days: which partitions a request reads, and in which order.

function partitionedEngine(
  db: Kysely<unknown>,
  index: string,
  schema: Schema,
  dialect: Dialect,
  tablesOf: (day: string) => DayTables,
): IndexEngine {
  const made = new Set<string>();
  const catalog = async (): Promise<string[]> =>
    (await sql<{ day: string }>`select day from search_partitions where name = ${index} order by day desc`.execute(db)).rows.map((r) => String(r.day));
  const ensure = async (day: string) => {
    if (made.has(day)) return;
    await tablesOf(day).create();
    await sql`insert into search_partitions (name, day) values (${index}, ${day}) ${dialect.ignoreDuplicate}`.execute(db);
    made.add(day);
  };
  /** A day dropped since the catalog was read holds nothing. */
  const onDay = async <R>(day: string, read: (tables: DayTables) => Promise<R>, empty: R): Promise<R> => {
    try {
      return await read(tablesOf(day));
    } catch (err) {
      if (dialect.isMissingTable(err)) return empty;
      throw err;
    }
  };
  /** The days a request's time range can reach, newest first. */
  const daysFor = async (filters: readonly Filter[]) => {
    let lo = -Infinity;
    let hi = Infinity;
    for (const f of filters) {
      if (f.kind !== "range" || f.field !== schema.time) continue;
      lo = Math.max(lo, f.gte ?? -Infinity, f.gt ?? -Infinity);
      hi = Math.min(hi, f.lte ?? Infinity, f.lt ?? Infinity);
    }
    const from = Number.isFinite(lo) ? dayOf(Math.max(0, lo)) : "";
    const to = Number.isFinite(hi) ? dayOf(Math.max(0, hi)) : "~";
    return (await catalog()).filter((d) => d >= from && d <= to);
  };
  /** Runs a statement built from every day at once; a day dropped meanwhile makes it read the catalog again. */
  const acrossDays = async <R>(filters: readonly Filter[], run: (days: string[]) => Promise<R>): Promise<R> => {
    try {
      return await run(await daysFor(filters));
    } catch (err) {
      if (!dialect.isMissingTable(err)) throw err;
      return run(await daysFor(filters));
    }
  };
  const deleteBefore = async (day: string, before: number) => {
    let deleted = 0;
    for (;;) {
      const n = await onDay(day, (t) => t.deleteBatch(before), 0);
      deleted += n;
      if (n < DELETE_BATCH) return deleted;
    }
  };
  const dropDays = async (days: readonly string[]) => {
    for (const day of days) {
      // Out of the catalog first: readers skip it from then on, a writer of that day makes it again.
      await sql`delete from search_partitions where name = ${index} and day = ${day}`.execute(db);
      made.delete(day);
      await tablesOf(day).drop();
    }
  };

  return {
    async index(documents) {
      const byDay = new Map<string, StoredDocument[]>();
      for (const d of documents) {
        const day = dayOf(d.time);
        const docs = byDay.get(day);
        if (docs) docs.push(d);
        else byDay.set(day, [d]);
      }
      const write = async () => {
        // Tables first: MariaDB commits before DDL, so none may run inside the write.
        for (const day of byDay.keys()) await ensure(day);
        await db.transaction().execute(async (trx) => {
          for (const [day, docs] of byDay) await tablesOf(day).write(trx, docs);
        });
      };
      try {
        await write();
      } catch (err) {
        if (!dialect.isMissingTable(err)) throw err;
        made.clear(); // retention dropped a day this process had made
        await write();
      }
    },

    async search(plan, limit) {
      const days = await daysFor(plan.filters);
      const relevance = plan.sort === "relevance";
      const { after } = plan;
      // Days whose matches a page read in full: their count is known.
      const counted = new Map<string, number>();
      let hits: EngineHit[] = [];
      if (relevance) {
        // Scores are per day (as OpenSearch's are per shard): each day's best, merged.
        for (const day of days) {
          const rows = await onDay(day, (t) => page(db, schema, t.source(plan, RANKED_PAGE), plan, after, limit), []);
          if (!after && rows.length < limit) counted.set(day, rows.length);
          hits.push(...rows);
        }
        hits = hits.sort(byRelevance).slice(0, limit);
      } else {
        // Every document of a day is older than those of the days after it: newest days first, until the page is full.
        const cursorDay = after ? dayOf(Number(after[0])) : undefined;
        for (const day of days) {
          if (cursorDay !== undefined && day > cursorDay) continue;
          const want = limit - hits.length;
          const rows = await onDay(day, (t) => page(db, schema, t.source(plan, TIMED_PAGE), plan, day === cursorDay ? after : undefined, want), []);
          if (!after && rows.length < want) counted.set(day, rows.length);
          hits.push(...rows);
          if (hits.length >= limit) break;
        }
      }
      let total = 0;
      for (const day of days) {
        if (total > plan.totalLimit) break;
        total += counted.get(day) ?? (await onDay(day, (t) => count(db, t.source(plan, MATCHES_ONLY), plan, plan.totalLimit + 1 - total), 0));
      }
      return { hits, total };
    },

    async aggregate(plan) {
      return acrossDays(plan.filters, async (days) => {
        const parts = days.map((day) => {
          const s = tablesOf(day).source(plan, MATCHES_ONLY);
          return { filtered: sql`from ${s.from} ${where([...s.where, ...plan.filters.map(filterCondition)])}` };
        });
        if (parts.length === 0) return { total: 0, counts: plan.counts.map((c) => ({ field: c.field, buckets: [], otherCount: 0 })), ...(plan.intervalMs ? { histogram: [] } : {}) };
        const present = plan.counts.map((c, i) => sql`count(${col("m", c.field)}) as ${ref(`c${i}`)}`);
        const totals = await sql<Record<string, number>>`${unionAll(parts.map((p) => sql`select ${sql.join([sql`count(*) as total`, ...present])} ${p.filtered}`))}`.execute(db);
        const sum = (key: string) => totals.rows.reduce((n, r) => n + Number(r[key] ?? 0), 0);
        const counts = [];
        for (const [i, c] of plan.counts.entries()) {
          const field = col("m", c.field);
          const perDay = parts.map((p) => sql`select ${field} as v, count(*) as n ${p.filtered} and ${field} is not null group by ${field}`);
          const { rows } = await sql<{ v: string; n: number }>`select v, sum(n) as n from (${unionAll(perDay)}) u group by v order by n desc, v asc limit ${c.size}`.execute(db);
          const buckets = rows.map((r) => ({ value: String(r.v), count: Number(r.n) }));
          counts.push({ field: c.field, buckets, otherCount: sum(`c${i}`) - buckets.reduce((n, b) => n + b.count, 0) });
        }
        let histogram: { start: number; count: number }[] | undefined;
        if (plan.intervalMs) {
          const bucket = dialect.intDiv(col("m", schema.time), plan.intervalMs);
          const perDay = parts.map((p) => sql`select ${bucket} as b, count(*) as n ${p.filtered} group by ${bucket}`);
          const { rows } = await sql<{ b: number; n: number }>`select b, sum(n) as n from (${unionAll(perDay)}) u group by b order by b`.execute(db);
          histogram = rows.map((r) => ({ start: Number(r.b) * plan.intervalMs!, count: Number(r.n) }));
        }
        return { total: sum("total"), counts, ...(histogram ? { histogram } : {}) };
      });
    },

    async days() {
      return acrossDays([], async (days) => {
        if (days.length === 0) return [];
        const perDay = days.map((day) => sql`select ${day} as day, count(*) as n from ${tablesOf(day).docs}`);
        const { rows } = await sql<{ day: string; n: number }>`${unionAll(perDay)}`.execute(db);
        return rows
          .map((r) => ({ day: String(r.day), documents: Number(r.n) }))
          .filter((d) => d.documents > 0)
          .sort((a, b) => a.day.localeCompare(b.day));
      });
    },

    async dropDaysBefore(start) {
      const old = (await catalog()).filter((d) => d < dayOf(start)).reverse();
      await dropDays(old);
      return old;
    },

    async deleteBefore(time) {
      const old = (await catalog()).filter((d) => d < dayOf(time));
      let deleted = 0;
      for (const day of old) deleted += await onDay(day, (t) => countAll(db, t), 0);
      await dropDays(old);
      return deleted + (await deleteBefore(dayOf(time), time));
    },

    async drop() {
      await dropDays(await catalog());
      await sql`delete from search_indexes where name = ${index}`.execute(db);
    },
  };
}

function byRelevance(a: EngineHit, b: EngineHit): number {
  return (b.score ?? 0) - (a.score ?? 0) || b.document.time - a.document.time || (a.document.id < b.document.id ? 1 : a.document.id > b.document.id ? -1 : 0);
}

/** `select ... union all select ...`, nested in groups so that no compound select has too many terms. */
function unionAll(terms: readonly RawBuilder<unknown>[]): RawBuilder<unknown> {
  if (terms.length <= UNION_TERMS) return sql.join(terms, sql` union all `);
  const groups: RawBuilder<unknown>[] = [];
  for (let i = 0; i < terms.length; i += UNION_TERMS) {
    groups.push(sql`select * from (${unionAll(terms.slice(i, i + UNION_TERMS))}) ${ref(`g${i / UNION_TERMS}`)}`);
  }
  return unionAll(groups);
}

// ---------------------------------------------------------------------------------------------
// One day's page and count, the same in both dialects.

async function page(db: Kysely<unknown>, schema: Schema, s: Source, plan: SearchPlan, after: SortKey | undefined, limit: number): Promise<EngineHit[]> {
  const time = col("m", schema.time);
  const id = col("m", "id");
  const relevance = plan.sort === "relevance";
  const conditions = [...s.where, ...plan.filters.map(filterCondition)];
  if (after) {
    const [t, i] = relevance ? after.slice(1) : after;
    const byTime = sql`${time} < ${t} or (${time} = ${t} and ${id} < ${i})`;
    const beyond = s.better === "lower" ? sql`${s.score} > ${after[0]}` : sql`${s.score} < ${after[0]}`;
    conditions.push(relevance ? sql`${beyond} or (${s.score} = ${after[0]} and (${byTime}))` : byTime);
  }
  const order = relevance
    ? sql`order by score ${sql.raw(s.better === "lower" ? "asc" : "desc")}, ${time} desc, ${id} desc`
    : sql`order by ${time} desc, ${id} desc`;
  const columns = [id, time, ...schema.keyword.map((k) => col("m", k)), ...schema.numeric.map((k) => col("m", k)), ...s.textColumns];
  const { rows } = await sql<Record<string, unknown>>`select ${sql.join(columns)}, ${s.score} as score from ${s.from} ${where(conditions)} ${order} limit ${limit}`.execute(db);
  return rows.map((row): EngineHit => {
    const document = readDocument(schema, row);
    const score = Number(row.score);
    return {
      document,
      score: s.better === "lower" ? -score : score,
      sortKey: relevance ? [score, document.time, document.id] : [document.time, document.id],
    };
  });
}

async function count(db: Kysely<unknown>, s: Source, plan: MatchPlan, limit: number): Promise<number> {
  const conditions = [...s.where, ...plan.filters.map(filterCondition)];
  const { rows } = await sql<{ n: number }>`select count(*) as n from (select 1 as one from ${s.from} ${where(conditions)} limit ${limit}) c`.execute(db);
  return Number(rows[0]?.n ?? 0);
}

async function countAll(db: Kysely<unknown>, tables: DayTables): Promise<number> {
  const { rows } = await sql<{ n: number }>`select count(*) as n from ${tables.docs}`.execute(db);
  return Number(rows[0]?.n ?? 0);
}

function filterCondition(filter: Filter): RawBuilder<unknown> {
  const column = col("m", filter.field);
  switch (filter.kind) {
    case "term":
      return filter.values.length === 1 ? sql`${column} = ${filter.values[0]}` : sql`${column} in (${sql.join(filter.values)})`;
    case "prefix": {
      // A range on the (binary-collated) index: every value starting with the prefix sorts between it and its successor.
      const upper = successor(filter.prefix);
      return upper === undefined ? sql`${column} >= ${filter.prefix}` : sql`${column} >= ${filter.prefix} and ${column} < ${upper}`;
    }
    case "range": {
      const parts: RawBuilder<unknown>[] = [];
      if (filter.gte !== undefined) parts.push(sql`${column} >= ${filter.gte}`);
      if (filter.gt !== undefined) parts.push(sql`${column} > ${filter.gt}`);
      if (filter.lte !== undefined) parts.push(sql`${column} <= ${filter.lte}`);
      if (filter.lt !== undefined) parts.push(sql`${column} < ${filter.lt}`);
      return sql.join(parts, sql` and `);
    }
  }
}

/** The smallest string greater than every string starting with `prefix` (code point order), if any. */
function successor(prefix: string): string | undefined {
  const chars = [...prefix];
  while (chars.length > 0) {
    const last = chars.pop()!.codePointAt(0)!;
    if (last < 0x10ffff) {
      const next = last + 1 === 0xd800 ? 0xe000 : last + 1;
      return chars.join("") + String.fromCodePoint(next);
    }
  }
  return undefined;
}

function where(conditions: readonly RawBuilder<unknown>[]): RawBuilder<unknown> {
  return conditions.length === 0 ? sql`where 1 = 1` : sql`where ${sql.join(conditions.map((c) => sql`(${c})`), sql` and `)}`;
}

function readDocument(schema: Schema, row: Record<string, unknown>): StoredDocument {
  const values: Record<string, string | number | null> = {};
  for (const field of [...schema.text, ...schema.keyword, ...schema.numeric]) {
    const v = row[field];
    values[field] = v === null || v === undefined ? null : schema.numeric.includes(field) ? Number(v) : String(v);
  }
  return { id: String(row.id), time: Number(row[schema.time]), values };
}

function chunks<T>(items: readonly T[], size: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out;
}

/** A LIKE pattern's literal text, with `!` as the escape character (a backslash means different things in the two dialects). */
function escapeLike(text: string): string {
  return text.replace(/[!%_]/g, (c) => `!${c}`);
}

// ---------------------------------------------------------------------------------------------
// SQLite: FTS5 with the trigram tokenizer.

const sqliteDialect: Dialect = {
  ignoreDuplicate: sql`on conflict do nothing`,
  intDiv: (column, size) => sql`(${column} / ${sql.lit(size)})`,
  isMissingTable: (err) => err instanceof Error && /no such table/i.test(err.message),
  tables: async (db, schema) => (table) => sqliteDay(db, table, schema),
};

function sqliteDay(db: Kysely<unknown>, table: string, schema: Schema): DayTables {
  const docs = sql.table(table);
  const text = sql.table(`${table}_text`);
  const textColumns = schema.text.map((t) => col("x", t));
  const fields = [...schema.keyword, ...schema.numeric];
  return {
    docs,
    async create() {
      const columns = [
        sql`seq integer primary key`,
        sql`id text not null unique`,
        sql`${ref(schema.time)} integer not null`,
        ...schema.keyword.map((k) => sql`${ref(k)} text`),
        ...schema.numeric.map((k) => sql`${ref(k)} real`),
      ];
      await sql`create table if not exists ${docs} (${sql.join(columns)})`.execute(db);
      await sql`create index if not exists ${ref(`${table}_by_time`)} on ${docs} (${ref(schema.time)}, id)`.execute(db);
      for (const k of schema.keyword) {
        await sql`create index if not exists ${ref(`${table}_by_${k}`)} on ${docs} (${ref(k)}, ${ref(schema.time)})`.execute(db);
      }
      await sql`create virtual table if not exists ${text} using fts5(${sql.join(schema.text.map(ref))}, tokenize = 'trigram')`.execute(db);
    },
    async drop() {
      await sql`drop table if exists ${text}`.execute(db);
      await sql`drop table if exists ${docs}`.execute(db);
    },
    async write(trx, documents) {
      const perRow = 2 + fields.length + schema.text.length;
      for (const chunk of chunks(documents, Math.min(MAX_ROWS_PER_STATEMENT, Math.floor(30_000 / perRow)))) {
        const rows = chunk.map((d) => sql`(${sql.join([d.id, d.time, ...fields.map((f) => d.values[f] ?? null)])})`);
        const updates = [schema.time, ...fields].map((f) => sql`${ref(f)} = excluded.${ref(f)}`);
        await sql`insert into ${docs} (${sql.join(["id", schema.time, ...fields].map(ref))}) values ${sql.join(rows)} on conflict (id) do update set ${sql.join(updates)}`.execute(trx);
        const { rows: seqs } = await sql<{ seq: number; id: string }>`select seq, id from ${docs} where id in (${sql.join(chunk.map((d) => d.id))})`.execute(trx);
        const seqOf = new Map(seqs.map((r) => [r.id, r.seq]));
        await sql`delete from ${text} where rowid in (${sql.join(seqs.map((r) => r.seq))})`.execute(trx);
        const textRows = chunk.map((d) => sql`(${sql.join([seqOf.get(d.id), ...schema.text.map((t) => d.values[t] ?? null)])})`);
        await sql`insert into ${text} (rowid, ${sql.join(schema.text.map(ref))}) values ${sql.join(textRows)}`.execute(trx);
      }
    },
    source(plan, use = RANKED_PAGE) {
      if (plan.terms === undefined) {
        if (!use.text) return { from: sql`${docs} m`, where: [], score: sql`0`, better: "lower", textColumns: [] };
        return { from: sql`${docs} m join ${text} x on x.rowid = m.seq`, where: [], score: sql`0`, better: "lower", textColumns };
      }
      // Three or more characters go through the trigram index; shorter ones are read with LIKE.
      const long = plan.terms.filter((t) => [...t.literal].length >= 3);
      const short = plan.terms.filter((t) => [...t.literal].length < 3);
      const likes = (alias?: string) =>
        short.map((t) => sql`(${sql.join(schema.text.map((c) => sql`${alias ? col(alias, c) : ref(c)} like ${`%${escapeLike(t.literal)}%`} escape '!'`), sql` or `)})`);
      // The text columns the outer statement reads (for a count, none: the LIKE reads them where it runs).
      const selected = use.text ? schema.text : [];
      const columns = sql.join([sql`rowid as seq`, ...selected.map(ref)]);
      const bm = use.rank ? sql`bm25(${text})` : sql`0`;
      const ftsQuery = long.map((t) => `"${t.literal.replaceAll('"', '""')}"`).join(plan.operator === "and" ? " AND " : " OR ");
      let inner: RawBuilder<unknown>;
      if (long.length === 0) {
        inner = sql`select ${columns}, 0 as bm from ${text} where ${sql.join(likes(), sql.raw(plan.operator === "and" ? " and " : " or "))}`;
      } else if (plan.operator === "and" || short.length === 0) {
        const extra = likes().map((l) => sql` and ${l}`);
        inner = sql`select ${columns}, ${bm} as bm from ${text} where ${text} match ${ftsQuery}${sql.join(extra, sql``)}`;
      } else {
        // "or" with short terms: a document may match by LIKE alone; only trigram matches carry a rank.
        const ranked = sql`select rowid as r, ${bm} as bm from ${text} where ${text} match ${ftsQuery}`;
        inner = sql`select ${sql.join([sql`f.rowid as seq`, ...selected.map((c) => col("f", c))])}, coalesce(r.bm, 0) as bm from ${text} f left join (${ranked}) r on r.r = f.rowid where r.r is not null or ${sql.join(likes("f"), sql` or `)}`;
      }
      return { from: sql`(${inner}) x join ${docs} m on m.seq = x.seq`, where: [], score: sql`x.bm`, better: "lower", textColumns: use.text ? textColumns : [] };
    },
    async deleteBatch(before) {
      return db.transaction().execute(async (trx) => {
        const { rows } = await sql<{ seq: number }>`select seq from ${docs} where ${ref(schema.time)} < ${before} limit ${DELETE_BATCH}`.execute(trx);
        if (rows.length === 0) return 0;
        const seqs = sql.join(rows.map((r) => r.seq));
        await sql`delete from ${text} where rowid in (${seqs})`.execute(trx);
        await sql`delete from ${docs} where seq in (${seqs})`.execute(trx);
        return rows.length;
      });
    },
  };
}

// ---------------------------------------------------------------------------------------------
// MariaDB / MySQL: InnoDB FULLTEXT over tokens made here.

/** Token sizes the InnoDB full-text index keeps (`innodb_ft_min_token_size`, `innodb_ft_max_token_size`). */
interface TokenBounds {
  readonly min: number;
  readonly max: number;
}

const mysqlDialect: Dialect = {
  ignoreDuplicate: sql`on duplicate key update name = name`,
  intDiv: (column, size) => sql`(${column} div ${sql.lit(size)})`,
  isMissingTable: (err) => (err as { code?: unknown })?.code === "ER_NO_SUCH_TABLE",
  async tables(db, schema) {
    const { rows } = await sql<{ min: number; max: number; packet: number }>`select @@innodb_ft_min_token_size as min, @@innodb_ft_max_token_size as max, @@max_allowed_packet as packet`.execute(db);
    const bounds = { min: Number(rows[0]?.min ?? 3), max: Number(rows[0]?.max ?? 84) };
    // Half of max_allowed_packet: the most one insert statement may carry (estimated).
    const budget = Math.max(1 << 20, Math.floor(Number(rows[0]?.packet ?? 16 << 20) / 2));
    return (table) => mysqlDay(db, table, schema, bounds, budget);
  },
};

function mysqlDay(db: Kysely<unknown>, table: string, schema: Schema, bounds: TokenBounds, budget: number): DayTables {
  const docs = sql.table(table);
  const textColumns = schema.text.map((t) => col("m", t));
  const match = (query: string) => sql`match(m.search_tokens) against (${query} in boolean mode)`;
  const fields = [schema.time, ...schema.keyword, ...schema.numeric, ...schema.text];
  return {
    docs,
    async create() {
      const columns = [
        sql`id varchar(128) character set ascii collate ascii_bin not null`,
        sql`${ref(schema.time)} bigint not null`,
        // No-pad binary: 'a' and 'a ' are different values, as on SQLite and OpenSearch.
        ...schema.keyword.map((k) => sql`${ref(k)} varchar(255) character set utf8mb4 collate utf8mb4_nopad_bin null`),
        ...schema.numeric.map((k) => sql`${ref(k)} double null`),
        ...schema.text.map((k) => sql`${ref(k)} mediumtext character set utf8mb4 collate utf8mb4_bin null`),
        sql`search_tokens longtext character set ascii collate ascii_bin not null`,
        sql`primary key (id)`,
        sql`key by_time (${ref(schema.time)}, id)`,
        ...schema.keyword.map((k) => sql`key ${ref(`by_${k}`)} (${ref(k)}, ${ref(schema.time)})`),
        sql`fulltext key by_tokens (search_tokens)`,
      ];
      await sql`create table if not exists ${docs} (${sql.join(columns)}) engine=InnoDB default charset=utf8mb4 collate=utf8mb4_bin`.execute(db);
    },
    async drop() {
      await sql`drop table if exists ${docs}`.execute(db);
    },
    async write(trx, documents) {
      const names = sql.join(["id", ...fields, "search_tokens"].map(ref));
      const updates = sql.join([...fields, "search_tokens"].map((f) => sql`${ref(f)} = values(${ref(f)})`));
      for (const chunk of byBytes(documents, budget)) {
        const rows = chunk.map((d) => sql`(${sql.join([d.id, d.time, ...fields.slice(1).map((f) => d.values[f] ?? null), documentTokens(schema, d, bounds)])})`);
        await sql`insert into ${docs} (${names}) values ${sql.join(rows)} on duplicate key update ${updates}`.execute(trx);
      }
    },
    source(plan, use = RANKED_PAGE) {
      const from = sql`${docs} m`;
      const read = use.text ? textColumns : [];
      if (plan.terms === undefined) return { from, where: [], score: sql`0`, better: "higher", textColumns: read };
      // A lone CJK character sits inside bigrams: it is looked for in the text itself.
      const indexed = plan.terms.filter((t) => !t.singleCjk);
      const scanned = plan.terms.filter((t) => t.singleCjk);
      const likes = scanned.map((t) => sql.join(textColumns.map((c) => sql`${c} like ${`%${escapeLike(t.literal)}%`} escape '!'`), sql` or `));
      const query = booleanQuery(indexed, plan.operator, bounds);
      const conditions = [...(indexed.length > 0 ? [match(query)] : []), ...likes];
      const where = plan.operator === "and" ? conditions : [sql.join(conditions.map((c) => sql`(${c})`), sql` or `)];
      return { from, where, score: use.rank && indexed.length > 0 ? match(query) : sql`0`, better: "higher", textColumns: read };
    },
    async deleteBatch(before) {
      const result = await sql`delete from ${docs} where ${ref(schema.time)} < ${before} limit ${DELETE_BATCH}`.execute(db);
      return Number(result.numAffectedRows ?? 0);
    },
  };
}

/** Chunks of documents whose text (with its tokens, a few bytes per character) fits the statement budget. */
function byBytes(documents: readonly StoredDocument[], budget: number): StoredDocument[][] {
  const out: StoredDocument[][] = [];
  let current: StoredDocument[] = [];
  let bytes = 0;
  for (const doc of documents) {
    let size = 200;
    for (const v of Object.values(doc.values)) if (typeof v === "string") size += Buffer.byteLength(v) * 6;
    if (current.length > 0 && (bytes + size > budget || current.length >= MAX_ROWS_PER_STATEMENT)) {
      out.push(current);
      current = [];
      bytes = 0;
    }
    current.push(doc);
    bytes += size;
  }
  if (current.length > 0) out.push(current);
  return out;
}

/**
 * A token spelled for the InnoDB parser: `ft`, then `[a-z0-9]` as they are and any other character
 * as `_` plus six hex digits; padded with `_` to the minimum size, cut to the maximum. No stopword
 * starts with `ft`, and the spelling is one-to-one, so equal tokens mean equal words.
 */
export function spellToken(token: string, bounds: TokenBounds): string {
  let out = "ft";
  for (const ch of token) out += /[a-z0-9]/.test(ch) ? ch : `_${ch.codePointAt(0)!.toString(16).padStart(6, "0")}`;
  return out.padEnd(bounds.min, "_").slice(0, bounds.max);
}

/** Between two fields, so that a phrase never spans them; no word is spelled like it. */
function fieldSeparator(bounds: TokenBounds): string {
  return "ft_".padEnd(bounds.min, "_");
}

function documentTokens(schema: Schema, doc: StoredDocument, bounds: TokenBounds): string {
  return schema.text
    .map((field) => {
      const value = doc.values[field];
      return typeof value === "string" ? tokenize(value).map((t) => spellToken(t, bounds)).join(" ") : "";
    })
    .join(` ${fieldSeparator(bounds)} `);
}

/** The BOOLEAN MODE query: each term a quoted phrase of spelled tokens, required (`+`) when every term must match. */
function booleanQuery(terms: readonly TextTerm[], operator: MatchPlan["operator"], bounds: TokenBounds): string {
  return terms.map((t) => `${operator === "and" ? "+" : ""}"${t.tokens.map((token) => spellToken(token, bounds)).join(" ")}"`).join(" ");
}
