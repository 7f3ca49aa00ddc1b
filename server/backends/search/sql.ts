import { sql, type Kysely, type RawBuilder } from "kysely";
import { failedPrecondition } from "../../core/errors.js";
import type { SqlBackend } from "../sql/sql-backend.js";
import { createDeclaredIndex } from "./declared-index.js";
import type { SearchIndex } from "./search-index.js";
import {
  checkIndexName,
  dayOf,
  normalizeSchema,
  schemaDefinition,
  type AggregatePlan,
  type EngineHit,
  type Filter,
  type IndexEngine,
  type MatchPlan,
  type Schema,
  type SearchPlan,
  type StoredDocument,
} from "./search-plan.js";
import { tokenize, type TextTerm } from "./text-terms.js";

/**
 * The embedded `search` implementation over the SQL store, one table per logical index (see the
 * README for why not one per day):
 * - SQLite: `search_<index>_docs` (time, keyword and numeric columns) beside an FTS5 table
 *   `search_<index>_text` with the trigram tokenizer, so any substring of three or more
 *   characters, CJK included, is found through the index; bm25 ranks.
 * - MariaDB: `search_<index>_docs` with the text columns and `search_tokens`, an InnoDB FULLTEXT
 *   index over the tokens of `text-terms.ts` (words, CJK bigrams). MariaDB has no n-gram parser
 *   (that is MySQL's), so the bigrams are made here; each token is spelled in `[a-z0-9_]` with a
 *   prefix, which keeps it clear of the stopword list and the minimum token size.
 * `search_indexes` records each index's schema.
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
      const tables = tableNames(name);
      const tokens = await dialect.createTables(db, tables, schema);
      await sql`insert into search_indexes (name, definition) values (${name}, ${definition}) ${dialect.ignoreDuplicate}`.execute(db);
      check(await stored());
      return createDeclaredIndex(name, declared, schema, dialect.engine(db, tables, schema, tokens));
    },
  };
}

interface Tables {
  /** The logical index. */
  readonly name: string;
  readonly docs: string;
  readonly text: string;
}

function tableNames(index: string): Tables {
  return { name: index, docs: `search_${index}_docs`, text: `search_${index}_text` };
}

/** Token sizes the MariaDB full-text index keeps (`innodb_ft_min_token_size`, `innodb_ft_max_token_size`). */
interface TokenBounds {
  readonly min: number;
  readonly max: number;
}

interface Dialect {
  /** Creates the index's tables if missing; MariaDB returns its token size limits. */
  createTables(db: Kysely<unknown>, tables: Tables, schema: Schema): Promise<TokenBounds | undefined>;
  readonly ignoreDuplicate: RawBuilder<unknown>;
  engine(db: Kysely<unknown>, tables: Tables, schema: Schema, tokens: TokenBounds | undefined): IndexEngine;
}

const DAY_MS = 86_400_000;
/** Rows deleted per statement by retention, so that no transaction holds locks for long. */
const DELETE_BATCH = 1000;
/** Documents per insert statement (SQLite allows 32,766 variables; MySQL 65,535 placeholders). */
const MAX_ROWS_PER_STATEMENT = 500;

const ref = (column: string) => sql.ref(column);
const col = (alias: string, column: string) => sql.ref(`${alias}.${column}`);

// ---------------------------------------------------------------------------------------------
// The parts SQLite and MariaDB share: filters, sort, cursor, totals, counts and retention.

/** What one dialect contributes to a query: the rows to read (alias `m` for documents) and their score. */
interface Source {
  readonly from: RawBuilder<unknown>;
  /** Conditions on the text, beyond what `from` already restricts. */
  readonly where: readonly RawBuilder<unknown>[];
  /** The relevance expression; `better` says which way is better. */
  readonly score: RawBuilder<unknown>;
  readonly better: "lower" | "higher";
  /** Text columns to read, qualified. */
  readonly textColumns: readonly RawBuilder<unknown>[];
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
  return conditions.length === 0 ? sql`` : sql`where ${sql.join(conditions.map((c) => sql`(${c})`), sql` and `)}`;
}

function readDocument(schema: Schema, row: Record<string, unknown>): StoredDocument {
  const values: Record<string, string | number | null> = {};
  for (const field of [...schema.text, ...schema.keyword, ...schema.numeric]) {
    const v = row[field];
    values[field] = v === null || v === undefined ? null : schema.numeric.includes(field) ? Number(v) : String(v);
  }
  return { id: String(row.id), time: Number(row[schema.time]), values };
}

function sharedEngine(
  db: Kysely<unknown>,
  tables: Tables,
  schema: Schema,
  source: (match: MatchPlan) => Source,
  parts: {
    index(documents: readonly StoredDocument[]): Promise<void>;
    /** Deletes up to DELETE_BATCH documents older than `time`; returns how many. */
    deleteBatch(time: number): Promise<number>;
    /** `column div size` in this dialect. */
    intDiv(column: RawBuilder<unknown>, size: number): RawBuilder<unknown>;
    /** Drops the index's tables. */
    dropTables(): Promise<void>;
  },
): IndexEngine {
  const time = col("m", schema.time);
  const id = col("m", "id");
  const matching = (plan: MatchPlan) => {
    const s = source(plan);
    return { s, conditions: [...s.where, ...plan.filters.map(filterCondition)] };
  };
  const deleteBefore = async (before: number) => {
    let deleted = 0;
    for (;;) {
      const n = await parts.deleteBatch(before);
      deleted += n;
      if (n < DELETE_BATCH) return deleted;
    }
  };
  const days = async () => {
    const day = parts.intDiv(time, DAY_MS);
    const { rows } = await sql<{ d: number; n: number }>`select ${day} as d, count(*) as n from ${sql.table(tables.docs)} m group by ${day} order by d`.execute(db);
    return rows.map((r) => ({ day: dayOf(Number(r.d) * DAY_MS), documents: Number(r.n) }));
  };
  return {
    index: parts.index,
    async search(plan: SearchPlan, limit: number) {
      const { s, conditions } = matching(plan);
      const relevance = plan.sort === "relevance";
      const after = plan.after;
      const page = [...conditions];
      if (after) {
        const [t, i] = relevance ? after.slice(1) : after;
        const byTime = sql`${time} < ${t} or (${time} = ${t} and ${id} < ${i})`;
        const beyond = s.better === "lower" ? sql`${s.score} > ${after[0]}` : sql`${s.score} < ${after[0]}`;
        page.push(relevance ? sql`${beyond} or (${s.score} = ${after[0]} and (${byTime}))` : byTime);
      }
      const order = relevance
        ? sql`order by score ${sql.raw(s.better === "lower" ? "asc" : "desc")}, ${time} desc, ${id} desc`
        : sql`order by ${time} desc, ${id} desc`;
      const columns = [id, time, ...schema.keyword.map((k) => col("m", k)), ...schema.numeric.map((k) => col("m", k)), ...s.textColumns];
      const { rows } = await sql<Record<string, unknown>>`select ${sql.join(columns)}, ${s.score} as score from ${s.from} ${where(page)} ${order} limit ${limit}`.execute(db);
      const counted = await sql<{ n: number }>`select count(*) as n from (select 1 as one from ${s.from} ${where(conditions)} limit ${plan.totalLimit + 1}) c`.execute(db);
      const hits = rows.map((row): EngineHit => {
        const document = readDocument(schema, row);
        const score = Number(row.score);
        return {
          document,
          score: s.better === "lower" ? -score : score,
          sortKey: relevance ? [score, document.time, document.id] : [document.time, document.id],
        };
      });
      return { hits, total: Number(counted.rows[0]?.n ?? 0) };
    },
    async aggregate(plan: AggregatePlan) {
      const { s, conditions } = matching(plan);
      const filtered = sql`from ${s.from} ${where(conditions)}`;
      const present = plan.counts.map((c, i) => sql`count(${col("m", c.field)}) as ${sql.ref(`c${i}`)}`);
      const { rows: [totals] } = await sql<Record<string, number>>`select ${sql.join([sql`count(*) as total`, ...present])} ${filtered}`.execute(db);
      const counts = [];
      for (const [i, c] of plan.counts.entries()) {
        const field = col("m", c.field);
        const { rows } = await sql<{ v: string; n: number }>`select ${field} as v, count(*) as n from ${s.from} ${where([...conditions, sql`${field} is not null`])} group by ${field} order by n desc, v asc limit ${c.size}`.execute(db);
        const buckets = rows.map((r) => ({ value: String(r.v), count: Number(r.n) }));
        const shown = buckets.reduce((sum, b) => sum + b.count, 0);
        counts.push({ field: c.field, buckets, otherCount: Number(totals?.[`c${i}`] ?? 0) - shown });
      }
      let histogram: { start: number; count: number }[] | undefined;
      if (plan.intervalMs) {
        const bucket = parts.intDiv(time, plan.intervalMs);
        const { rows } = await sql<{ b: number; n: number }>`select ${bucket} as b, count(*) as n ${filtered} group by ${bucket} order by b`.execute(db);
        histogram = rows.map((r) => ({ start: Number(r.b) * plan.intervalMs!, count: Number(r.n) }));
      }
      return { total: Number(totals?.total ?? 0), counts, ...(histogram ? { histogram } : {}) };
    },
    days,
    async dropDaysBefore(dayStart: number) {
      const dropped = (await days()).filter((d) => Date.parse(d.day) < dayStart).map((d) => d.day);
      if (dropped.length > 0) await deleteBefore(dayStart);
      return dropped;
    },
    deleteBefore,
    async drop() {
      await parts.dropTables();
      await sql`delete from search_indexes where name = ${tables.name}`.execute(db);
    },
  };
}

function chunks<T>(items: readonly T[], size: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out;
}

// ---------------------------------------------------------------------------------------------
// SQLite: FTS5 with the trigram tokenizer.

const sqliteDialect: Dialect = {
  ignoreDuplicate: sql`on conflict (name) do nothing`,
  async createTables(db, tables, schema) {
    const columns = [
      sql`seq integer primary key`,
      sql`id text not null unique`,
      sql`${ref(schema.time)} integer not null`,
      ...schema.keyword.map((k) => sql`${ref(k)} text`),
      ...schema.numeric.map((k) => sql`${ref(k)} real`),
    ];
    await sql`create table if not exists ${sql.table(tables.docs)} (${sql.join(columns)})`.execute(db);
    await sql`create index if not exists ${sql.ref(`${tables.docs}_by_time`)} on ${sql.table(tables.docs)} (${ref(schema.time)}, id)`.execute(db);
    for (const k of schema.keyword) {
      await sql`create index if not exists ${sql.ref(`${tables.docs}_by_${k}`)} on ${sql.table(tables.docs)} (${ref(k)}, ${ref(schema.time)})`.execute(db);
    }
    await sql`create virtual table if not exists ${sql.table(tables.text)} using fts5(${sql.join(schema.text.map(ref))}, tokenize = 'trigram')`.execute(db);
    return undefined;
  },
  engine(db, tables, schema) {
    const docs = sql.table(tables.docs);
    const text = sql.table(tables.text);
    const textColumns = schema.text.map((t) => col("x", t));
    const source = (plan: MatchPlan): Source => {
      const join = (inner: RawBuilder<unknown>) => sql`(${inner}) x join ${docs} m on m.seq = x.seq`;
      if (plan.terms === undefined) {
        return { from: sql`${text} x join ${docs} m on m.seq = x.rowid`, where: [], score: sql`0`, better: "lower", textColumns };
      }
      // Three or more characters go through the trigram index; shorter ones are read with LIKE.
      const long = plan.terms.filter((t) => [...t.literal].length >= 3);
      const short = plan.terms.filter((t) => [...t.literal].length < 3);
      const likes = (alias: string | undefined) =>
        short.map((t) => sql`(${sql.join(schema.text.map((c) => sql`${alias ? col(alias, c) : ref(c)} like ${`%${escapeLike(t.literal)}%`} escape '!'`), sql` or `)})`);
      const fields = sql.join(schema.text.map(ref));
      const ftsQuery = long.map((t) => `"${t.literal.replaceAll('"', '""')}"`).join(plan.operator === "and" ? " AND " : " OR ");
      let inner: RawBuilder<unknown>;
      if (long.length === 0) {
        inner = sql`select rowid as seq, 0 as bm, ${fields} from ${text} where ${sql.join(likes(undefined), sql.raw(plan.operator === "and" ? " and " : " or "))}`;
      } else if (plan.operator === "and" || short.length === 0) {
        const extra = likes(undefined).map((l) => sql` and ${l}`);
        inner = sql`select rowid as seq, bm25(${text}) as bm, ${fields} from ${text} where ${text} match ${ftsQuery}${sql.join(extra, sql``)}`;
      } else {
        // "or" with short terms: a document may match by LIKE alone; only trigram matches carry a rank.
        const ranked = sql`select rowid as r, bm25(${text}) as bm from ${text} where ${text} match ${ftsQuery}`;
        inner = sql`select f.rowid as seq, coalesce(r.bm, 0) as bm, ${sql.join(schema.text.map((c) => col("f", c)))} from ${text} f left join (${ranked}) r on r.r = f.rowid where r.r is not null or ${sql.join(likes("f"), sql` or `)}`;
      }
      return { from: join(inner), where: [], score: sql`x.bm`, better: "lower", textColumns };
    };
    return sharedEngine(db, tables, schema, source, {
      intDiv: (column, size) => sql`(${column} / ${sql.lit(size)})`,
      async dropTables() {
        await sql`drop table if exists ${text}`.execute(db);
        await sql`drop table if exists ${docs}`.execute(db);
      },
      async index(documents) {
        const fields = [...schema.keyword, ...schema.numeric];
        const perRow = 2 + fields.length + schema.text.length;
        await db.transaction().execute(async (trx) => {
          for (const chunk of chunks(documents, Math.min(MAX_ROWS_PER_STATEMENT, Math.floor(30_000 / perRow)))) {
            const rows = chunk.map((d) => sql`(${sql.join([d.id, d.time, ...fields.map((f) => d.values[f] ?? null)])})`);
            const updates = [schema.time, ...fields].map((f) => sql`${ref(f)} = excluded.${ref(f)}`);
            await sql`insert into ${docs} (${sql.join(["id", schema.time, ...fields].map(ref))}) values ${sql.join(rows)} on conflict (id) do update set ${sql.join(updates)}`.execute(trx);
            const ids = chunk.map((d) => d.id);
            const { rows: seqs } = await sql<{ seq: number; id: string }>`select seq, id from ${docs} where id in (${sql.join(ids)})`.execute(trx);
            const seqOf = new Map(seqs.map((r) => [r.id, r.seq]));
            await sql`delete from ${text} where rowid in (${sql.join(seqs.map((r) => r.seq))})`.execute(trx);
            const textRows = chunk.map((d) => sql`(${sql.join([seqOf.get(d.id), ...schema.text.map((t) => d.values[t] ?? null)])})`);
            await sql`insert into ${text} (rowid, ${sql.join(schema.text.map(ref))}) values ${sql.join(textRows)}`.execute(trx);
          }
        });
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
    });
  },
};

/** A LIKE pattern's literal text, with `!` as the escape character (a backslash means different things in the two dialects). */
function escapeLike(text: string): string {
  return text.replace(/[!%_]/g, (c) => `!${c}`);
}

// ---------------------------------------------------------------------------------------------
// MariaDB / MySQL: InnoDB FULLTEXT over tokens made here.

const mysqlDialect: Dialect = {
  ignoreDuplicate: sql`on duplicate key update name = name`,
  async createTables(db, tables, schema) {
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
      ...schema.keyword.map((k) => sql`key ${sql.ref(`by_${k}`)} (${ref(k)}, ${ref(schema.time)})`),
      sql`fulltext key by_tokens (search_tokens)`,
    ];
    await sql`create table if not exists ${sql.table(tables.docs)} (${sql.join(columns)}) engine=InnoDB default charset=utf8mb4 collate=utf8mb4_bin`.execute(db);
    const { rows } = await sql<{ min: number; max: number }>`select @@innodb_ft_min_token_size as min, @@innodb_ft_max_token_size as max`.execute(db);
    return { min: Number(rows[0]?.min ?? 3), max: Number(rows[0]?.max ?? 84) };
  },
  engine(db, tables, schema, bounds) {
    const tokens = bounds ?? { min: 3, max: 84 };
    const docs = sql.table(tables.docs);
    const textColumns = schema.text.map((t) => col("m", t));
    const match = (query: string) => sql`match(m.search_tokens) against (${query} in boolean mode)`;
    const source = (plan: MatchPlan): Source => {
      const from = sql`${docs} m`;
      if (plan.terms === undefined) return { from, where: [], score: sql`0`, better: "higher", textColumns };
      // A lone CJK character sits inside bigrams: it is looked for in the text itself.
      const indexed = plan.terms.filter((t) => !t.singleCjk);
      const scanned = plan.terms.filter((t) => t.singleCjk);
      const likes = scanned.map((t) => sql.join(textColumns.map((c) => sql`${c} like ${`%${escapeLike(t.literal)}%`} escape '!'`), sql` or `));
      const query = booleanQuery(indexed, plan.operator, tokens);
      const conditions = [...(indexed.length > 0 ? [match(query)] : []), ...likes];
      const where = plan.operator === "and" ? conditions : [sql.join(conditions.map((c) => sql`(${c})`), sql` or `)];
      return { from, where, score: indexed.length > 0 ? match(query) : sql`0`, better: "higher", textColumns };
    };
    return sharedEngine(db, tables, schema, source, {
      intDiv: (column, size) => sql`(${column} div ${sql.lit(size)})`,
      async dropTables() {
        await sql`drop table if exists ${docs}`.execute(db);
      },
      async index(documents) {
        const fields = [schema.time, ...schema.keyword, ...schema.numeric, ...schema.text];
        const names = sql.join(["id", ...fields, "search_tokens"].map(ref));
        const updates = sql.join([...fields, "search_tokens"].map((f) => sql`${ref(f)} = values(${ref(f)})`));
        const budget = await packetBudget(db);
        await db.transaction().execute(async (trx) => {
          for (const chunk of byBytes(documents, budget)) {
            const rows = chunk.map(
              (d) => sql`(${sql.join([d.id, d.time, ...fields.slice(1).map((f) => d.values[f] ?? null), documentTokens(schema, d, tokens)])})`,
            );
            await sql`insert into ${docs} (${names}) values ${sql.join(rows)} on duplicate key update ${updates}`.execute(trx);
          }
        });
      },
      async deleteBatch(before) {
        const result = await sql`delete from ${docs} where ${ref(schema.time)} < ${before} limit ${DELETE_BATCH}`.execute(db);
        return Number(result.numAffectedRows ?? 0);
      },
    });
  },
};

/** Half of `max_allowed_packet`, the most one insert statement may carry (estimated). */
async function packetBudget(db: Kysely<unknown>): Promise<number> {
  const { rows } = await sql<{ p: number }>`select @@max_allowed_packet as p`.execute(db);
  return Math.max(1 << 20, Math.floor(Number(rows[0]?.p ?? 16 << 20) / 2));
}

/** Chunks of documents whose text (with its tokens, about 5 bytes per character) fits the statement budget. */
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
