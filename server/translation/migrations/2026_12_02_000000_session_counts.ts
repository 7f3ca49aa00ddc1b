import { sql, type Kysely } from "kysely";
import { columnTypes } from "../../backends/sql/column-types.js";

/** The task statuses with a counter column (translation.counts.ts); `total` counts every task. */
const STATUSES = ["pending", "processing", "completed", "failed", "cancelled"];

/**
 * `translation_session_counts`: each session's stored tasks by status, kept by every transaction that
 * writes or deletes tasks (see translation.counts.ts), so GetSession no longer counts the session's
 * tasks. Filled here from the tasks already stored.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  const t = columnTypes(db);
  let table = db.schema.createTable("translation_session_counts").addColumn("session_id", t.id(64), (c) => c.primaryKey());
  for (const column of ["total", ...STATUSES]) table = table.addColumn(column, t.micros(), (c) => c.notNull().defaultTo(0));
  await table.modifyEnd(t.tableOptions()).execute();
  const sums = STATUSES.map((s) => `sum(case when status = '${s}' then 1 else 0 end)`).join(", ");
  await sql`insert into translation_session_counts (session_id, total, ${sql.raw(STATUSES.join(", "))})
    select session_id, count(*), ${sql.raw(sums)} from translation_tasks group by session_id`.execute(db);
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.dropTable("translation_session_counts").execute();
}
