import type { Kysely } from "kysely";
import { columnTypes } from "../../backends/sql/column-types.js";

/**
 * Deleted sessions stay deleted: `translation_tombstones` remembers when each session was deleted so
 * that records stamped before that, flushed later by any instance, are dropped; `deleted_at` on a
 * session marks a soft delete (hidden until cleanup purges it).
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  const t = columnTypes(db);
  await db.schema.alterTable("translation_sessions").addColumn("deleted_at", t.micros()).execute();
  await db.schema
    .createTable("translation_tombstones")
    .addColumn("session_id", t.id(64), (c) => c.primaryKey())
    .addColumn("deleted_at", t.micros(), (c) => c.notNull())
    .modifyEnd(t.tableOptions())
    .execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.dropTable("translation_tombstones").execute();
  await db.schema.alterTable("translation_sessions").dropColumn("deleted_at").execute();
}
