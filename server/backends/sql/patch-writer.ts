import { mkdir, writeFile } from "node:fs/promises";
import path from "node:path";
import { CompiledQuery, sql, type Kysely } from "kysely";
import { escape } from "mysql2";
import type { FieldValue, Patch, PatchGroups, PatchTable, WriteMode } from "../../core/patch.js";

export type { PatchGroups, PatchTable, WriteMode } from "../../core/patch.js";
import type { SqlBackend } from "./sql-store.js";

/** One patch the database refused, and why. */
export interface RejectedPatch {
  readonly patch: Patch;
  readonly reason: string;
}

/** Writes merged patches into SQL tables; used by the write batcher. */
export interface PatchWriter {
  /**
   * Upserts every group, tables in the order given, one multi-row statement per chunk: in one
   * transaction, or for a large write in several at once over disjoint key ranges (see
   * `parallelism`). Resolves only when all committed; rejects if any failed. Returns the number of
   * upsert statements run (not counting `prepare`'s reads).
   */
  write(groups: PatchGroups): Promise<number>;
  /** Records patches the database refused, with their reasons, in `dead_letters`. */
  deadLetter(rejected: readonly RejectedPatch[]): Promise<void>;
  /** Dead letters of this write path stored so far. */
  countDeadLetters(): Promise<number>;
}

/** `parts` writes of the same tables, each with a contiguous range of every table's keys. */
export function splitByKeyRange(groups: PatchGroups, parts: number): PatchGroups[] {
  const out: { table: string; patches: Patch[] }[][] = Array.from({ length: parts }, () => []);
  for (const { table, patches } of groups) {
    const sorted = [...patches].sort((a, b) => compareKeys(a.key, b.key));
    const size = Math.ceil(sorted.length / parts);
    for (let i = 0; i < parts; i++) {
      const slice = sorted.slice(i * size, (i + 1) * size);
      if (slice.length > 0) out[i]!.push({ table, patches: slice });
    }
  }
  return out.filter((part) => part.length > 0);
}

function compareKeys(a: readonly string[], b: readonly string[]): number {
  for (let i = 0; i < Math.min(a.length, b.length); i++) {
    const x = a[i]!;
    const y = b[i]!;
    if (x !== y) return x < y ? -1 : 1;
  }
  return a.length - b.length;
}

/** Most bound parameters in one statement: MySQL's prepared-statement limit, SQLite's default variable limit. */
const MAX_PARAMS = { mysql: 65_535, sqlite: 32_766 } as const;

export interface PatchWriterOptions {
  /** `lww` (default) or `append`; see WriteMode. */
  readonly mode?: WriteMode;
  /** The write path's name, recorded with its dead letters (default "translation"). */
  readonly writePath?: string;
  /**
   * Largest statement sent to MySQL, in bytes (default: half of the server's max_allowed_packet, read
   * at start and again whenever the server refuses a packet as too large).
   */
  readonly maxStatementBytes?: number;
  /**
   * Where a dead letter too large for one statement keeps its whole record, as a JSON file named in
   * its `payload` (default: none; the stored payload is then cut to fit).
   */
  readonly overflowDir?: string;
  /**
   * Runs inside each write's transaction before the upserts and returns what to write instead (the
   * translation domain drops records of deleted sessions here). Default: write everything.
   */
  readonly prepare?: (trx: Kysely<unknown>, groups: PatchGroups) => Promise<PatchGroups>;
  /**
   * Runs inside each write's transaction after the upserts, with what was written (the translation
   * domain recounts the tasks of the sessions written here). Default: nothing.
   */
  readonly finish?: (trx: Kysely<unknown>, written: PatchGroups) => Promise<void>;
  /**
   * Transactions a large write is split into, run at once on separate connections (default: 4 on
   * MySQL, 1 on SQLite, which has one writer). Each takes a contiguous range of keys of every table,
   * so they touch disjoint rows. Safe because each column applies by its own stamp: the order in
   * which the parts commit cannot change the result. Only writes of a backlog are split (see
   * MIN_ROWS_PER_PART), so the statements per record stay as low as for one transaction.
   */
  readonly parallelism?: number;
}

/**
 * Rows in one upsert statement at most. A transaction runs statements besides its upserts (begin and
 * commit, and the translation path's hooks run three: its tombstone guard, counter lock and recount),
 * so statements of 2,000 rows keep its flushes of 3,500 records or more under 2 statements per 1,000
 * records; larger ones save MariaDB little and hold the event loop longer while their text is made.
 */
const MAX_ROWS_PER_STATEMENT = 2000;

/** A write is split only when each part still gets at least this many rows (each part is a transaction of its own: see above). */
const MIN_ROWS_PER_PART = 5000;

/**
 * Multi-row upserts that apply each column only when the incoming value's stamp is at least the
 * stored one (per-column last-writer-wins), so flush order, concurrent instances and replays cannot
 * regress a row. Row `updated_at` is the newest stamp applied.
 *
 * MySQL evaluates ON DUPLICATE KEY UPDATE assignments left to right, each seeing the ones before:
 * a column is assigned before its stamp. SQLite's DO UPDATE sees the old row throughout.
 */
export async function createPatchWriter(
  backend: SqlBackend,
  tables: readonly PatchTable[],
  options: PatchWriterOptions = {},
): Promise<PatchWriter> {
  const db = backend.db as Kysely<unknown>;
  const byName = new Map(tables.map((t) => [t.name, t]));
  let maxBytes = options.maxStatementBytes ?? (await defaultStatementBytes(backend));
  /** After the server refused a packet as too large: its limit may have changed since it was read. */
  const relearnLimit = async (err: unknown) => {
    if (options.maxStatementBytes !== undefined || !isPacketTooLarge(err)) return;
    maxBytes = await defaultStatementBytes(backend).catch(() => maxBytes);
  };
  const maxParams = MAX_PARAMS[backend.dialect];
  const shapes = new Map<string, Shape>();
  const append = options.mode === "append";
  /**
   * MySQL upserts are sent with their values in the text: mysql2 would otherwise scan the whole text for
   * placeholders on every call (the backend's queryFormat passes a statement without values as it is).
   */
  const inline = !append && backend.dialect === "mysql";
  const writePath = options.writePath ?? "translation";

  /**
   * The upserts of one table's patches, each made when the one before has run: a flush holds the event
   * loop for one statement's text at a time (at most MAX_ROWS_PER_STATEMENT rows), not for all of them.
   */
  function* statementsFor(table: PatchTable, patches: readonly Patch[]): Generator<CompiledQuery> {
    // Only the columns some patch of the group sets take part (narrow statements for narrow updates);
    // the rest keep their stored value, or get the table default on a new row.
    const set = new Set<string>();
    for (const patch of patches) for (const column of patch.fields.keys()) set.add(column);
    // Appended rows are whole: every column, given or defaulted, in one shape per table.
    const written = append ? [] : table.fieldColumns.filter((c) => set.has(c));
    const insertOnly = append ? table.fieldColumns : table.insertRequired.filter((c) => !set.has(c));
    const signature = `${table.name}|${written.join(",")}|${insertOnly.join(",")}`;
    let shape = shapes.get(signature);
    if (!shape) shapes.set(signature, (shape = append ? appendShape(table, backend.dialect) : upsertShape(table, written, insertOnly, backend.dialect)));
    const { head, tail, rowSql, perRow } = shape;
    const maxRows = Math.min(MAX_ROWS_PER_STATEMENT, Math.floor(maxParams / perRow));
    let params: FieldValue[] = [];
    /** MySQL upserts carry their values in the text, escaped once here (see inlineValues). */
    let rowTexts: string[] = [];
    let rows = 0;
    let bytes = 0;
    const take = (): CompiledQuery => {
      const text = inline ? `${head} values ${rowTexts.join(",")} ${tail}` : `${head} values ${new Array(rows).fill(rowSql).join(",")} ${tail}`;
      const statement = CompiledQuery.raw(text, params);
      params = [];
      rowTexts = [];
      rows = 0;
      bytes = 0;
      return statement;
    };
    for (const patch of patches) {
      let rowBytes: number;
      let row: FieldValue[] | undefined;
      let text: string | undefined;
      if (inline) {
        text = rowText(table, written, insertOnly, patch);
        rowBytes = Buffer.byteLength(text) + 1;
      } else {
        row = append ? appendValues(table, patch) : rowValues(table, written, insertOnly, patch);
        rowBytes = row.reduce<number>((n, v) => n + (typeof v === "string" ? Buffer.byteLength(v) + 4 : 12), 0);
      }
      // Sent, it would make MySQL drop the connection; refused here, the batcher moves it to the dead letters.
      if (rowBytes > 2 * maxBytes) throw new Error(`row of about ${rowBytes} bytes does not fit in the server's max_allowed_packet (${2 * maxBytes} bytes)`);
      if (rows > 0 && (rows >= maxRows || bytes + rowBytes > maxBytes)) yield take();
      if (text !== undefined) rowTexts.push(text);
      else params.push(...row!);
      rows++;
      bytes += rowBytes;
    }
    if (rows > 0) yield take();
  }

  // Appends keep their order: one transaction at a time.
  const parallelism = append ? 1 : Math.max(1, options.parallelism ?? (backend.dialect === "mysql" ? 4 : 1));

  /** One transaction: `prepare`, then the upserts, tables in order, then `finish`. */
  const writeOnce = (groups: PatchGroups): Promise<number> =>
    db.transaction().execute(async (trx) => {
      const kept = options.prepare ? await options.prepare(trx, groups) : groups;
      let statements = 0;
      for (const { table, patches } of kept) {
        const spec = byName.get(table);
        if (!spec) throw new Error(`no patch table ${table}`);
        if (patches.length === 0) continue;
        for (const statement of statementsFor(spec, patches)) {
          await trx.executeQuery(statement);
          statements++;
        }
      }
      if (options.finish) await options.finish(trx, kept);
      return statements;
    });
  /**
   * A transaction MySQL rolled back as a deadlock victim runs again (a few times): the write was
   * sound, only its locks met another's. Without this the batcher would take it for refused rows.
   */
  const writeOne = async (groups: PatchGroups): Promise<number> => {
    for (let attempt = 1; ; attempt++) {
      try {
        return await writeOnce(groups);
      } catch (err) {
        if (attempt >= DEADLOCK_ATTEMPTS || !isDeadlock(err)) throw err;
      }
    }
  };

  const write = async (groups: PatchGroups): Promise<number> => {
    const total = groups.reduce((n, g) => n + g.patches.length, 0);
    if (total === 0) return 0;
    const parts = Math.min(parallelism, Math.floor(total / MIN_ROWS_PER_PART));
    if (parts <= 1) return writeOne(groups);
    // Every part runs to its end before the write reports; any failure fails the whole write, and
    // the batcher writes it all again (parts that had committed rewrite the same values).
    const results = await Promise.allSettled(splitByKeyRange(groups, parts).map(writeOne));
    const failed = results.find((r): r is PromiseRejectedResult => r.status === "rejected");
    if (failed) throw failed.reason;
    return results.reduce((n, r) => n + (r as PromiseFulfilledResult<number>).value, 0);
  };

  /** A dead letter's row; a record too large for a statement is kept whole in a file instead, named in its payload. */
  const deadLetterRow = async ({ patch, reason }: RejectedPatch, now: number, n: number): Promise<DeadLetterRow> => {
    const record = JSON.stringify(Object.fromEntries(patch.fields));
    const row = { write_path: writePath, table_name: patch.table, record_key: JSON.stringify(patch.key), payload: record, reason: reason.slice(0, 2000), failed_at: now };
    const bytes = Buffer.byteLength(record);
    if (deadLetterStatementBytes(bytes) <= maxBytes) return row;
    const overflow: Record<string, unknown> = { truncated: true, bytes, fields: [...patch.fields.keys()] };
    if (options.overflowDir) {
      const file = `${patch.table}-${now}-${n}.json`;
      await mkdir(options.overflowDir, { recursive: true });
      await writeFile(path.join(options.overflowDir, file), JSON.stringify({ table: patch.table, key: patch.key, fields: Object.fromEntries(patch.fields), reason }));
      overflow.file = file;
    }
    return { ...row, payload: JSON.stringify(overflow) };
  };

  return {
    write: (groups) =>
      write(groups).catch(async (err: unknown) => {
        await relearnLimit(err);
        throw err;
      }),
    async deadLetter(rejected) {
      if (rejected.length === 0) return;
      const now = Date.now() * 1000;
      const rows = await Promise.all(rejected.map((r, n) => deadLetterRow(r, now, n)));
      // In statements that fit the server's packet limit, like the upserts.
      const insert = (chunk: DeadLetterRow[]) => db.withTables<{ dead_letters: DeadLetterRow }>().insertInto("dead_letters").values(chunk).execute();
      let chunk: DeadLetterRow[] = [];
      let bytes = 0;
      for (const row of rows) {
        const rowBytes = deadLetterStatementBytes(Buffer.byteLength(row.payload));
        if (chunk.length > 0 && bytes + rowBytes > maxBytes) {
          await insert(chunk);
          chunk = [];
          bytes = 0;
        }
        chunk.push(row);
        bytes += rowBytes;
      }
      if (chunk.length > 0) await insert(chunk);
    },
    async countDeadLetters() {
      const { rows } = await sql<{ n: number | string }>`select count(*) as n from dead_letters where write_path = ${writePath}`.execute(db);
      return Number(rows[0]?.n ?? 0);
    },
  };
}

/** A row of `dead_letters` as this writer stores it (the database gives it its id). */
export interface DeadLetterRow {
  write_path: string;
  table_name: string;
  /** The key values, as a JSON array. */
  record_key: string;
  /** Column → [value, stamp] as JSON; or, for a record too large for one statement, `{truncated: true, ..., file}`. */
  payload: string;
  reason: string;
  /** µs since the epoch. */
  failed_at: number;
}

/** The column lists and SQL around the VALUES of one upsert shape. */
interface Shape {
  readonly head: string;
  readonly tail: string;
  readonly rowSql: string;
  readonly perRow: number;
}

function rowValues(table: PatchTable, written: readonly string[], insertOnly: readonly string[], patch: Patch): FieldValue[] {
  const row: FieldValue[] = [...patch.key];
  for (const column of written) {
    const entry = patch.fields.get(column);
    if (entry) row.push(entry[0], entry[1]);
    else row.push(table.insertDefault(column, patch), 0);
  }
  for (const column of insertOnly) row.push(table.insertDefault(column, patch));
  row.push(patch.stamp);
  return row;
}

/**
 * A row of an upsert as SQL literals, `(key,...,value,stamp,...,updated_at)` in rowValues' order, built
 * straight from the patch; strings escaped as mysql2 escapes them.
 */
function rowText(table: PatchTable, written: readonly string[], insertOnly: readonly string[], patch: Patch): string {
  let text = "(";
  for (let i = 0; i < patch.key.length; i++) text += (i > 0 ? "," : "") + literal(patch.key[i]!);
  for (const column of written) {
    const entry = patch.fields.get(column);
    text += entry ? `,${literal(entry[0])},${numberText(entry[1])}` : `,${literal(table.insertDefault(column, patch))},0`;
  }
  for (const column of insertOnly) text += `,${literal(table.insertDefault(column, patch))}`;
  return `${text},${numberText(patch.stamp)})`;
}

function literal(v: FieldValue): string {
  return v === null ? "NULL" : typeof v === "number" ? numberText(v) : escape(v);
}

let lastNumber = Number.NaN;
let lastText = "";

/**
 * A number as SQL text. The stamps of a row are mostly one and the same µs value, past the small
 * integers V8 prints fast (about 150 ns each): the last one printed is kept.
 */
function numberText(n: number): string {
  if (n !== lastNumber) {
    lastNumber = n;
    lastText = String(n);
  }
  return lastText;
}

function appendValues(table: PatchTable, patch: Patch): FieldValue[] {
  const row: FieldValue[] = [...patch.key];
  for (const column of table.fieldColumns) {
    const entry = patch.fields.get(column);
    row.push(entry ? entry[0] : table.insertDefault(column, patch));
  }
  return row;
}

/** Insert-only: a key already stored keeps its row (a replay or a retry inserts nothing twice). */
function appendShape(table: PatchTable, dialect: SqlBackend["dialect"]): Shape {
  const columns = [...table.keyColumns, ...table.fieldColumns];
  const head = `insert into ${table.name} (${columns.join(",")})`;
  const rowSql = `(${new Array(columns.length).fill("?").join(",")})`;
  const first = table.keyColumns[0]!;
  const tail = dialect === "mysql" ? `on duplicate key update ${first} = ${first}` : `on conflict (${table.keyColumns.join(",")}) do nothing`;
  return { head, tail, rowSql, perRow: columns.length };
}

function upsertShape(table: PatchTable, written: readonly string[], insertOnly: readonly string[], dialect: SqlBackend["dialect"]): Shape {
  const columns = [...table.keyColumns, ...written.flatMap((c) => [c, `${c}_stamp`]), ...insertOnly, "updated_at"];
  const head = `insert into ${table.name} (${columns.join(",")})`;
  const rowSql = `(${new Array(columns.length).fill("?").join(",")})`;
  let tail: string;
  if (dialect === "mysql") {
    const sets = written.flatMap((c) => [
      `${c} = if(values(${c}_stamp) >= ${c}_stamp, values(${c}), ${c})`,
      `${c}_stamp = greatest(${c}_stamp, values(${c}_stamp))`,
    ]);
    sets.push("updated_at = greatest(updated_at, values(updated_at))");
    tail = `on duplicate key update ${sets.join(", ")}`;
  } else {
    const sets = written.flatMap((c) => [
      `${c} = case when excluded.${c}_stamp >= ${c}_stamp then excluded.${c} else ${c} end`,
      `${c}_stamp = max(${c}_stamp, excluded.${c}_stamp)`,
    ]);
    sets.push("updated_at = max(updated_at, excluded.updated_at)");
    tail = `on conflict (${table.keyColumns.join(",")}) do update set ${sets.join(", ")}`;
  }
  return { head, tail, rowSql, perRow: columns.length };
}

/** What a dead letter with a payload of `payloadBytes` adds to a statement: escaping can double the text; the rest is room for its other columns. */
function deadLetterStatementBytes(payloadBytes: number): number {
  return 2 * payloadBytes + 4096;
}

/** Times a write rolled back as a deadlock victim is tried in all. */
const DEADLOCK_ATTEMPTS = 5;

/** MySQL's ER_LOCK_DEADLOCK: the transaction was rolled back to break a lock cycle. */
export function isDeadlock(err: unknown): boolean {
  return (err as { errno?: number })?.errno === 1213;
}

/** MySQL's "Got a packet bigger than 'max_allowed_packet' bytes" (ER_NET_PACKET_TOO_LARGE). */
function isPacketTooLarge(err: unknown): boolean {
  const e = err as { errno?: number; message?: string };
  return e?.errno === 1153 || /max_allowed_packet/.test(String(e?.message));
}

async function defaultStatementBytes(backend: SqlBackend): Promise<number> {
  if (backend.dialect === "sqlite") return 256 * 1024 * 1024;
  const { rows } = await sql<{ packet: number | string }>`select @@max_allowed_packet as packet`.execute(backend.db);
  return Math.floor(Number(rows[0]?.packet ?? 4 * 1024 * 1024) / 2);
}
