import type { Kysely } from "kysely";
import { columnTypes } from "../../backends/sql/column-types.js";

/**
 * `dead_letters`: records the database refused, waiting with the reason. Databases migrated before the
 * platform had migrations of its own got this table from translation's field-stamps migration, so it
 * is created only when missing.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  const t = columnTypes(db);
  await db.schema
    .createTable("dead_letters")
    .ifNotExists()
    .addColumn("id", t.serial(), (c) => c.primaryKey())
    .addColumn("table_name", t.varchar(64), (c) => c.notNull())
    .addColumn("record_key", t.varchar(255), (c) => c.notNull())
    .addColumn("payload", t.json(), (c) => c.notNull())
    .addColumn("reason", t.text(), (c) => c.notNull())
    .addColumn("failed_at", t.micros(), (c) => c.notNull())
    .modifyEnd(t.tableOptions())
    .execute();
  await db.schema.createIndex("dead_letters_table_failed").ifNotExists().on("dead_letters").columns(["table_name", "failed_at"]).execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.dropTable("dead_letters").execute();
}
