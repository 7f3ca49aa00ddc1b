import type { Kysely } from "kysely";
import { columnTypes } from "../../backends/sql/column-types.js";

/** Columns of the translation tables that writes patch; each gets a companion stamp column. */
const PATCHED = {
  translation_sessions: [
    "filename", "file_path", "status", "game_info", "llm_provider", "metadata",
    "total_tasks", "completed_tasks", "failed_tasks", "processing_tasks", "created_at",
  ],
  translation_tasks: [
    "batch_id", "sheet_name", "row_index", "column_name", "source_text", "target_text", "context", "status",
    "confidence", "error_message", "retry_count", "start_time", "end_time", "duration_ms", "llm_model",
    "token_count", "cost", "target_language", "created_at",
  ],
};

/**
 * Per-column ordering stamps (`<column>_stamp`, µs since the epoch, 0 = never written): a write
 * applies to a column only when its stamp is at least the stored one. (This migration once created
 * `dead_letters` too; that table now belongs to the platform, see platform/migrations, which creates
 * it only where this one has not.)
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  const t = columnTypes(db);
  for (const [table, columns] of Object.entries(PATCHED)) {
    for (const column of columns) {
      await db.schema
        .alterTable(table)
        .addColumn(`${column}_stamp`, t.micros(), (c) => c.notNull().defaultTo(0))
        .execute();
    }
  }
}

export async function down(db: Kysely<unknown>): Promise<void> {
  for (const [table, columns] of Object.entries(PATCHED)) {
    for (const column of columns) await db.schema.alterTable(table).dropColumn(`${column}_stamp`).execute();
  }
}
