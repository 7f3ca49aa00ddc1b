import type { Kysely } from "kysely";
import { columnTypes } from "../../backends/sql/column-types.js";

/** translation_sessions and translation_tasks, with the indexes the translation queries use. */
export async function up(db: Kysely<unknown>): Promise<void> {
  const t = columnTypes(db);

  await db.schema
    .createTable("translation_sessions")
    .addColumn("session_id", t.id(64), (c) => c.primaryKey())
    .addColumn("filename", t.varchar(255), (c) => c.notNull().defaultTo(""))
    .addColumn("file_path", t.varchar(512))
    .addColumn("status", t.varchar(16), (c) => c.notNull().defaultTo("pending"))
    .addColumn("game_info", t.json())
    .addColumn("llm_provider", t.varchar(50))
    .addColumn("metadata", t.json())
    .addColumn("total_tasks", t.integer(), (c) => c.notNull().defaultTo(0))
    .addColumn("completed_tasks", t.integer(), (c) => c.notNull().defaultTo(0))
    .addColumn("failed_tasks", t.integer(), (c) => c.notNull().defaultTo(0))
    .addColumn("processing_tasks", t.integer(), (c) => c.notNull().defaultTo(0))
    .addColumn("created_at", t.micros(), (c) => c.notNull())
    .addColumn("updated_at", t.micros(), (c) => c.notNull())
    .modifyEnd(t.tableOptions())
    .execute();
  const sessionIndexes: Record<string, string[]> = {
    translation_sessions_status_created: ["status", "created_at"],
    translation_sessions_status_updated: ["status", "updated_at"],
    translation_sessions_created: ["created_at"],
    translation_sessions_updated: ["updated_at"],
  };
  for (const [name, columns] of Object.entries(sessionIndexes)) {
    await db.schema.createIndex(name).on("translation_sessions").columns(columns).execute();
  }

  await db.schema
    .createTable("translation_tasks")
    .addColumn("session_id", t.id(64), (c) => c.notNull())
    .addColumn("task_id", t.id(64), (c) => c.notNull())
    .addColumn("batch_id", t.varchar(64))
    .addColumn("sheet_name", t.varchar(255), (c) => c.notNull().defaultTo(""))
    .addColumn("row_index", t.integer(), (c) => c.notNull().defaultTo(0))
    .addColumn("column_name", t.varchar(255), (c) => c.notNull().defaultTo(""))
    .addColumn("source_text", t.text())
    .addColumn("target_text", t.text())
    .addColumn("context", t.text())
    .addColumn("status", t.varchar(16), (c) => c.notNull().defaultTo("pending"))
    .addColumn("confidence", t.double())
    .addColumn("error_message", t.text())
    .addColumn("retry_count", t.integer(), (c) => c.notNull().defaultTo(0))
    .addColumn("start_time", t.micros())
    .addColumn("end_time", t.micros())
    .addColumn("duration_ms", t.integer())
    .addColumn("llm_model", t.varchar(100))
    .addColumn("token_count", t.integer())
    .addColumn("cost", t.double())
    .addColumn("target_language", t.varchar(32))
    .addColumn("created_at", t.micros(), (c) => c.notNull())
    .addColumn("updated_at", t.micros(), (c) => c.notNull())
    .addPrimaryKeyConstraint("translation_tasks_pk", ["session_id", "task_id"])
    .modifyEnd(t.tableOptions())
    .execute();
  const taskIndexes: Record<string, string[]> = {
    translation_tasks_session_status: ["session_id", "status"],
    translation_tasks_session_position: ["session_id", "sheet_name", "row_index", "column_name"],
    translation_tasks_task: ["task_id"],
    translation_tasks_batch: ["batch_id"],
    translation_tasks_updated: ["updated_at"],
  };
  for (const [name, columns] of Object.entries(taskIndexes)) {
    await db.schema.createIndex(name).on("translation_tasks").columns(columns).execute();
  }
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.dropTable("translation_tasks").execute();
  await db.schema.dropTable("translation_sessions").execute();
}
