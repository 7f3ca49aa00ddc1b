import { sql, type ExpressionBuilder, type Kysely, type SelectQueryBuilder } from "kysely";
import type { SqlDialect } from "../backends/sql/sql-store.js";
import type { Cursor, PageRequest } from "../core/paging.js";
import { SESSION, TASK } from "./translation.fields.js";
import { lockCounts, readCounts, subtractCounts } from "./translation.counts.js";
import type { StatusCounts } from "./translation.mapping.js";
import type { SessionRow, TaskRow, TranslationTables } from "./translation.table.js";

type Db = Kysely<TranslationTables>;
export type SortKey<Row> = { readonly column: keyof Row & string; readonly desc: boolean };

/**
 * Stored columns of each entity, and of the `_stamp` companions only the session counters': a counter
 * the client declared is shown as declared, one it never wrote by the count of stored tasks.
 */
export const SESSION_COUNTERS = ["total_tasks", "completed_tasks", "failed_tasks", "processing_tasks"] as const;
const SESSION_COLUMNS = [
  "session_id",
  ...SESSION.fields.map((f) => f.name),
  ...SESSION_COUNTERS.map((c) => `${c}_stamp`),
  "updated_at",
  "deleted_at",
] as (keyof SessionRow & string)[];
const TASK_COLUMNS = ["session_id", "task_id", ...TASK.fields.map((f) => f.name), "updated_at"] as (keyof TaskRow & string)[];

/** Tasks in their spreadsheet order: sheet, row, column (task id breaks ties). */
export const TASK_POSITION: readonly SortKey<TaskRow>[] = [
  { column: "sheet_name", desc: false },
  { column: "row_index", desc: false },
  { column: "column_name", desc: false },
  { column: "task_id", desc: false },
];

export interface SessionFilter {
  readonly statuses: readonly string[];
  readonly llmProvider?: string;
  /** created_at >= fromMicros */
  readonly fromMicros?: number;
  /** created_at < toMicros */
  readonly toMicros?: number;
}

export interface TaskFilter {
  readonly sessionId?: string;
  readonly statuses: readonly string[];
  readonly sheetName?: string;
  readonly batchId?: string;
  readonly fromMicros?: number;
  readonly toMicros?: number;
}

/** A session, soft-deleted ones included only when asked. */
export function findSession(db: Db, sessionId: string, includeDeleted = false): Promise<SessionRow | undefined> {
  let q = db.selectFrom("translation_sessions").select(SESSION_COLUMNS).where("session_id", "=", sessionId);
  if (!includeDeleted) q = q.where("deleted_at", "is", null);
  return q.executeTakeFirst();
}

/** Task counts by status for each of the given sessions, from their maintained counters. */
export function taskCounts(db: Db, sessionIds: readonly string[]): Promise<Map<string, StatusCounts>> {
  return readCounts(db, sessionIds);
}

function filterSessions<O>(query: SelectQueryBuilder<TranslationTables, "translation_sessions", O>, f: SessionFilter) {
  let q = query.where("deleted_at", "is", null);
  if (f.statuses.length > 0) q = q.where("status", "in", [...f.statuses]);
  if (f.llmProvider) q = q.where("llm_provider", "=", f.llmProvider);
  if (f.fromMicros !== undefined) q = q.where("created_at", ">=", f.fromMicros);
  if (f.toMicros !== undefined) q = q.where("created_at", "<", f.toMicros);
  return q;
}

export async function countSessions(db: Db, f: SessionFilter): Promise<number> {
  const row = await filterSessions(db.selectFrom("translation_sessions").select((eb) => eb.fn.countAll<number>().as("n")), f).executeTakeFirst();
  return Number(row?.n ?? 0);
}

/** The full order of a session listing sorted by `sort`: session_id breaks ties. */
export function sessionOrder(sort: SortKey<SessionRow>): SortKey<SessionRow>[] {
  return sort.column === "session_id" ? [sort] : [sort, { column: "session_id", desc: sort.desc }];
}

export function pageOfSessions(db: Db, f: SessionFilter, sort: SortKey<SessionRow>, page: PageRequest): Promise<SessionRow[]> {
  return paged(filterSessions(db.selectFrom("translation_sessions").select(SESSION_COLUMNS), f), sessionOrder(sort), page).execute();
}

function filterTasks<O>(query: SelectQueryBuilder<TranslationTables, "translation_tasks", O>, f: TaskFilter) {
  let q = query;
  if (f.sessionId) q = q.where("session_id", "=", f.sessionId);
  if (f.statuses.length > 0) q = q.where("status", "in", [...f.statuses]);
  if (f.sheetName) q = q.where("sheet_name", "=", f.sheetName);
  if (f.batchId) q = q.where("batch_id", "=", f.batchId);
  if (f.fromMicros !== undefined) q = q.where("created_at", ">=", f.fromMicros);
  if (f.toMicros !== undefined) q = q.where("created_at", "<", f.toMicros);
  return q;
}

export async function countTasks(db: Db, f: TaskFilter): Promise<number> {
  const row = await filterTasks(db.selectFrom("translation_tasks").select((eb) => eb.fn.countAll<number>().as("n")), f).executeTakeFirst();
  return Number(row?.n ?? 0);
}

/**
 * The full order of a task listing: by `column` when given, in the given direction, then by session
 * (across sessions) and spreadsheet position; without a column, that default order, reversed when `desc`.
 */
export function taskOrder(acrossSessions: boolean, column: (keyof TaskRow & string) | undefined, desc: boolean): SortKey<TaskRow>[] {
  const position: SortKey<TaskRow>[] = acrossSessions ? [{ column: "session_id", desc: false }, ...TASK_POSITION] : [...TASK_POSITION];
  if (column === undefined) return position.map((k) => ({ ...k, desc }));
  return [{ column, desc }, ...position.filter((k) => k.column !== column)];
}

/** Tasks matching `f` in the order `keys` (by session and spreadsheet position unless told otherwise). */
export function pageOfTasks(db: Db, f: TaskFilter, page: PageRequest, keys = taskOrder(!f.sessionId, undefined, false)): Promise<TaskRow[]> {
  return paged(filterTasks(db.selectFrom("translation_tasks").select(TASK_COLUMNS), f), keys, page).execute();
}

/** Every task with this id, in any session (at most `limit`). */
export function findTasks(db: Db, taskId: string, sessionId: string | undefined, limit: number): Promise<TaskRow[]> {
  let q = db.selectFrom("translation_tasks").select(TASK_COLUMNS).where("task_id", "=", taskId);
  if (sessionId) q = q.where("session_id", "=", sessionId);
  return q.orderBy("session_id").limit(limit).execute();
}

/** Sessions still pending or processing, newest first. */
export function incompleteSessions(db: Db): Promise<SessionRow[]> {
  return db
    .selectFrom("translation_sessions")
    .select(SESSION_COLUMNS)
    .where("status", "in", ["pending", "processing"])
    .where("deleted_at", "is", null)
    .orderBy("created_at", "desc")
    .orderBy("session_id", "desc")
    .execute();
}

/** The next `limit` pending or processing tasks of a session in spreadsheet order, after `after` when given. */
export function unfinishedTasks(db: Db, sessionId: string, limit: number, after?: readonly (string | number)[]): Promise<TaskRow[]> {
  let q = db
    .selectFrom("translation_tasks")
    .select(TASK_COLUMNS)
    .where("session_id", "=", sessionId)
    .where("status", "in", ["pending", "processing"]);
  if (after) q = q.where((eb) => keysetAfter(eb, TASK_POSITION, after));
  for (const key of TASK_POSITION) q = q.orderBy(key.column, "asc");
  return q.limit(limit).execute();
}

/** The sort-key values of a row, as a cursor carries them. */
export function sortValues<Row>(row: Row, keys: readonly SortKey<Row>[]): (string | number)[] {
  return keys.map((k) => row[k.column] as string | number);
}

/** Ordered by `keys`, one page: after the cursor when there is one, else by offset. */
function paged<TB extends keyof TranslationTables, O>(
  query: SelectQueryBuilder<TranslationTables, TB, O>,
  keys: readonly SortKey<TranslationTables[TB]>[],
  page: PageRequest,
): SelectQueryBuilder<TranslationTables, TB, O> {
  let q = query;
  if (page.cursor) q = q.where((eb) => keysetAfter(eb as ExpressionBuilder<TranslationTables, TB>, keys, (page.cursor as Cursor).after));
  for (const key of keys) q = q.orderBy(key.column as never, key.desc ? "desc" : "asc");
  q = q.limit(page.pageSize);
  if (!page.cursor && page.page > 1) q = q.offset((page.page - 1) * page.pageSize);
  return q;
}

/**
 * Rows strictly after `values` in the order of `keys`, spelled out as nested OR/AND so every
 * dialect can use the index: k1 > v1 OR (k1 = v1 AND (k2 > v2 OR (k2 = v2 AND ...))).
 */
function keysetAfter<TB extends keyof TranslationTables>(
  eb: ExpressionBuilder<TranslationTables, TB>,
  keys: readonly SortKey<TranslationTables[TB]>[],
  values: readonly (string | number)[],
) {
  const build = (i: number): ReturnType<typeof eb.and> => {
    const key = keys[i]!;
    const column = eb.ref(key.column as never);
    const beyond = eb(column, key.desc ? "<" : ">", values[i] as never);
    if (i === keys.length - 1) return eb.and([beyond]);
    return eb.or([beyond, eb.and([eb(column, "=", values[i] as never), build(i + 1)])]);
  };
  return build(0);
}

/** Records the deletion of a session (keeping the later time when it was deleted before). */
export async function writeTombstone(db: Db, dialect: SqlDialect, sessionId: string, deletedAt: number): Promise<void> {
  const insert = db.insertInto("translation_tombstones").values({ session_id: sessionId, deleted_at: deletedAt });
  await (dialect === "mysql"
    ? insert.onDuplicateKeyUpdate({ deleted_at: sql<number>`greatest(deleted_at, values(deleted_at))` })
    : insert.onConflict((oc) => oc.column("session_id").doUpdateSet({ deleted_at: sql<number>`max(deleted_at, excluded.deleted_at)` }))
  ).execute();
}

/** Hides a session (soft delete). */
export async function markDeleted(db: Db, sessionId: string, deletedAt: number): Promise<void> {
  await db.updateTable("translation_sessions").set({ deleted_at: deletedAt }).where("session_id", "=", sessionId).execute();
}

/**
 * Deletes a session's tasks in slices of `slice` rows (no long locks), then the session; returns the
 * tasks deleted. Each slice is a transaction that holds the session's counter row (as flushes do)
 * and subtracts what it deleted; the last one removes the counters with the session unless tasks
 * were written meanwhile.
 */
export async function purgeSession(db: Db, dialect: SqlDialect, sessionId: string, slice = 5000): Promise<number> {
  let deleted = 0;
  for (;;) {
    const gone = await db.transaction().execute(async (trx) => {
      await lockCounts(trx, dialect, [sessionId], false);
      const query = trx.selectFrom("translation_tasks").select(["task_id", "status"]).where("session_id", "=", sessionId).limit(slice);
      const rows = await (dialect === "mysql" ? query.forUpdate() : query).execute();
      if (rows.length === 0) return 0;
      await trx
        .deleteFrom("translation_tasks")
        .where("session_id", "=", sessionId)
        .where("task_id", "in", rows.map((r) => r.task_id))
        .execute();
      await subtractCounts(trx, sessionId, rows);
      return rows.length;
    });
    if (gone === 0) break;
    deleted += gone;
  }
  await db.transaction().execute(async (trx) => {
    await lockCounts(trx, dialect, [sessionId], false);
    await trx.deleteFrom("translation_sessions").where("session_id", "=", sessionId).execute();
    await trx.deleteFrom("translation_session_counts").where("session_id", "=", sessionId).where("total", "=", 0).execute();
  });
  return deleted;
}

/** Sessions and tasks by status (soft-deleted sessions left out). */
export async function statusCounts(db: Db): Promise<{ sessions: StatusCounts; tasks: StatusCounts }> {
  const sessions = await db
    .selectFrom("translation_sessions")
    .select(["status", (eb) => eb.fn.countAll<number>().as("n")])
    .where("deleted_at", "is", null)
    .groupBy("status")
    .execute();
  const tasks = await db.selectFrom("translation_tasks").select(["status", (eb) => eb.fn.countAll<number>().as("n")]).groupBy("status").execute();
  const toCounts = (rows: { status: string; n: number }[]) => Object.fromEntries(rows.map((r) => [r.status, Number(r.n)]));
  return { sessions: toCounts(sessions), tasks: toCounts(tasks) };
}

/** Average duration of completed sessions (µs), of tasks (ms), and average confidence. */
export async function averages(db: Db): Promise<{ sessionMicros: number; taskMs: number; confidence: number }> {
  const s = await db
    .selectFrom("translation_sessions")
    .select((eb) => eb.fn.avg<number>(eb("updated_at", "-", eb.ref("created_at"))).as("a"))
    .where("status", "=", "completed")
    .where("deleted_at", "is", null)
    .executeTakeFirst();
  const t = await db
    .selectFrom("translation_tasks")
    .select((eb) => [eb.fn.avg<number>("duration_ms").as("ms"), eb.fn.avg<number>("confidence").as("c")])
    .executeTakeFirst();
  return { sessionMicros: Number(s?.a ?? 0), taskMs: Number(t?.ms ?? 0), confidence: Number(t?.c ?? 0) };
}

/** Sessions a cleanup removes: of a status not updated since a time, or soft-deleted ones. */
export type ExpiredSessions = { readonly status: string; readonly updatedBefore: number } | { readonly softDeleted: true };

function whereExpired<O>(query: SelectQueryBuilder<TranslationTables, "translation_sessions", O>, expired: ExpiredSessions) {
  if ("softDeleted" in expired) return query.where("deleted_at", "is not", null);
  return query.where("status", "=", expired.status).where("updated_at", "<", expired.updatedBefore).where("deleted_at", "is", null);
}

export function expiredSessionIds(db: Db, expired: ExpiredSessions, limit: number): Promise<string[]> {
  return whereExpired(db.selectFrom("translation_sessions").select("session_id"), expired)
    .limit(limit)
    .execute()
    .then((rows) => rows.map((r) => r.session_id));
}

export async function countExpired(db: Db, expired: ExpiredSessions): Promise<{ sessions: number; tasks: number }> {
  const sessions = await whereExpired(db.selectFrom("translation_sessions").select((eb) => eb.fn.countAll<number>().as("n")), expired).executeTakeFirst();
  const tasks = await db
    .selectFrom("translation_tasks")
    .select((eb) => eb.fn.countAll<number>().as("n"))
    .where("session_id", "in", whereExpired(db.selectFrom("translation_sessions").select("session_id"), expired))
    .executeTakeFirst();
  return { sessions: Number(sessions?.n ?? 0), tasks: Number(tasks?.n ?? 0) };
}

/** Tasks of a session by id, in spreadsheet order. */
export function findTasksByIds(db: Db, sessionId: string, taskIds: readonly string[]): Promise<TaskRow[]> {
  if (taskIds.length === 0) return Promise.resolve([]);
  let q = db.selectFrom("translation_tasks").select(TASK_COLUMNS).where("session_id", "=", sessionId).where("task_id", "in", [...taskIds]);
  for (const key of TASK_POSITION) q = q.orderBy(key.column, "asc");
  return q.execute();
}
