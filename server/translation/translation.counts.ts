import { sql, type Kysely, type QueryExecutorProvider } from "kysely";
import type { SqlDialect } from "../backends/sql/sql-store.js";
import type { PatchGroups } from "../core/patch.js";
import { TASK } from "./translation.fields.js";
import type { StatusCounts } from "./translation.mapping.js";
import type { TranslationTables } from "./translation.table.js";

/**
 * `translation_session_counts`: each session's stored tasks by status, kept inside the transactions
 * that change them, so GetSession reads one row instead of counting the session's tasks.
 *
 * A flush locks the counter rows of the sessions whose tasks it writes (in key order, before the
 * task upserts, zeroed under the lock) and, after the upserts, recounts those sessions' tasks into
 * them with one grouped INSERT ... SELECT. Every writer of a session's tasks holds that row lock
 * until it commits, so flushes of the same session from any instance take turns and each recounts
 * what the one before committed plus its own rows: the counters are exact by construction. On
 * MySQL the SELECT of an INSERT ... SELECT is a locking read, which reads the newest committed rows
 * whatever the transaction's snapshot. A purge takes the same lock and subtracts what it deletes.
 */

/** The statuses with a column of their own; `total` counts every task, whatever its status. */
export const COUNTED_STATUSES = ["pending", "processing", "completed", "failed", "cancelled"] as const;
const COLUMNS = ["total", ...COUNTED_STATUSES] as const;

type Db = Kysely<TranslationTables>;

/** Sessions (sorted, distinct) whose tasks the groups write. */
function taskSessions(groups: PatchGroups): string[] {
  const sessions = new Set<string>();
  for (const group of groups) if (group.table === TASK.table) for (const patch of group.patches) sessions.add(patch.key[0]!);
  return [...sessions].sort();
}

/**
 * Takes the counter rows of `sessionIds` (sorted: transactions lock them in the same order) for this
 * transaction, creating missing ones; `zero` also sets them to zero, for a recount to fill in.
 */
export async function lockCounts(trx: QueryExecutorProvider, dialect: SqlDialect, sessionIds: readonly string[], zero: boolean): Promise<void> {
  if (sessionIds.length === 0) return;
  const rows = sql.join(sessionIds.map((id) => sql`(${id}, 0, 0, 0, 0, 0, 0)`));
  const head = sql`insert into translation_session_counts (session_id, ${sql.raw(COLUMNS.join(", "))}) values ${rows}`;
  const sets = zero ? COLUMNS.map((c) => `${c} = 0`).join(", ") : undefined;
  const tail =
    dialect === "mysql"
      ? sql.raw(`on duplicate key update ${sets ?? "session_id = session_id"}`)
      : sql.raw(sets ? `on conflict (session_id) do update set ${sets}` : "on conflict (session_id) do nothing");
  await sql`${head} ${tail}`.execute(trx);
}

/** Sets the counter rows of `sessionIds` (locked by this transaction) to the count of their stored tasks. */
export async function recountSessions(trx: QueryExecutorProvider, dialect: SqlDialect, sessionIds: readonly string[]): Promise<void> {
  if (sessionIds.length === 0) return;
  const sums = COUNTED_STATUSES.map((s) => `sum(case when status = '${s}' then 1 else 0 end)`).join(", ");
  const update =
    dialect === "mysql"
      ? `on duplicate key update ${COLUMNS.map((c) => `${c} = values(${c})`).join(", ")}`
      : `on conflict (session_id) do update set ${COLUMNS.map((c) => `${c} = excluded.${c}`).join(", ")}`;
  await sql`insert into translation_session_counts (session_id, ${sql.raw(COLUMNS.join(", "))})
    select session_id, count(*), ${sql.raw(sums)} from translation_tasks
    where session_id in (${sql.join(sessionIds)}) group by session_id ${sql.raw(update)}`.execute(trx);
}

/**
 * The write path's hooks: `prepare` runs the guard given, then locks (and zeroes) the counters of the
 * sessions whose tasks are still to be written; `finish` recounts them after the upserts.
 */
export function countsHooks(dialect: SqlDialect, guard: (trx: Kysely<unknown>, groups: PatchGroups) => Promise<PatchGroups>) {
  return {
    async prepare(trx: Kysely<unknown>, groups: PatchGroups): Promise<PatchGroups> {
      const kept = await guard(trx, groups);
      await lockCounts(trx, dialect, taskSessions(kept), true);
      return kept;
    },
    async finish(trx: Kysely<unknown>, written: PatchGroups): Promise<void> {
      await recountSessions(trx, dialect, taskSessions(written));
    },
  };
}

/** Stored tasks by status for each of the given sessions (no entry for a session without tasks). */
export async function readCounts(db: Db, sessionIds: readonly string[]): Promise<Map<string, StatusCounts>> {
  const counts = new Map<string, StatusCounts>();
  if (sessionIds.length === 0) return counts;
  const rows = await db
    .selectFrom("translation_session_counts")
    .select(["session_id", ...COLUMNS])
    .where("session_id", "in", [...sessionIds])
    .execute();
  for (const row of rows) {
    const total = Number(row.total);
    if (total === 0) continue;
    const byStatus: StatusCounts = {};
    let named = 0;
    for (const status of COUNTED_STATUSES) {
      const n = Number(row[status]);
      if (n > 0) byStatus[status] = n;
      named += n;
    }
    // Tasks of a status without a column of its own still count in the total.
    if (total > named) byStatus.other = total - named;
    counts.set(row.session_id, byStatus);
  }
  return counts;
}

/** Subtracts deleted tasks (counted by status) from a session's counters, locked by this transaction. */
export async function subtractCounts(trx: Db, sessionId: string, deleted: readonly { status: string }[]): Promise<void> {
  if (deleted.length === 0) return;
  const by = (status: string) => deleted.filter((t) => t.status === status).length;
  const sets = [`total = total - ${deleted.length}`, ...COUNTED_STATUSES.map((s) => `${s} = ${s} - ${by(s)}`)].join(", ");
  await sql`update translation_session_counts set ${sql.raw(sets)} where session_id = ${sessionId}`.execute(trx);
}
