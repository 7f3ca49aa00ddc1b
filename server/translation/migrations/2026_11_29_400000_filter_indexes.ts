import type { Kysely } from "kysely";
import { isMysql } from "../../backends/sql/column-types.js";

/**
 * Indexes for the remaining filters of the listings (tasks by status or creation time, sessions by
 * provider), and session indexes that carry deleted_at so that listings, which leave soft-deleted
 * sessions out, are answered from the index.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  for (const sort of ["created", "updated"]) {
    await dropIndex(db, `translation_sessions_status_${sort}`, "translation_sessions");
    await db.schema
      .createIndex(`translation_sessions_status_${sort}`)
      .on("translation_sessions")
      .columns(["status", "deleted_at", `${sort}_at`])
      .execute();
  }
  await db.schema.createIndex("translation_tasks_status").on("translation_tasks").columns(["status"]).execute();
  await db.schema.createIndex("translation_tasks_created").on("translation_tasks").columns(["created_at"]).execute();
  await db.schema.createIndex("translation_sessions_provider_created").on("translation_sessions").columns(["llm_provider", "created_at"]).execute();
  await db.schema.createIndex("translation_sessions_deleted").on("translation_sessions").columns(["deleted_at"]).execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await dropIndex(db, "translation_sessions_deleted", "translation_sessions");
  await dropIndex(db, "translation_sessions_provider_created", "translation_sessions");
  await dropIndex(db, "translation_tasks_created", "translation_tasks");
  await dropIndex(db, "translation_tasks_status", "translation_tasks");
  for (const sort of ["created", "updated"]) {
    await dropIndex(db, `translation_sessions_status_${sort}`, "translation_sessions");
    await db.schema.createIndex(`translation_sessions_status_${sort}`).on("translation_sessions").columns(["status", `${sort}_at`]).execute();
  }
}

/** DROP INDEX names the table on MySQL; SQLite's index names are global. */
async function dropIndex(db: Kysely<unknown>, name: string, table: string): Promise<void> {
  const drop = db.schema.dropIndex(name);
  await (isMysql(db) ? drop.on(table) : drop).execute();
}
