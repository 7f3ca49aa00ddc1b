import type { Kysely } from "kysely";
import { columnTypes } from "../../backends/sql/column-types.js";

/** Dead letters name the write path they came from; those before this migration came from translation's. */
export async function up(db: Kysely<unknown>): Promise<void> {
  const t = columnTypes(db);
  await db.schema
    .alterTable("dead_letters")
    .addColumn("write_path", t.varchar(64), (c) => c.notNull().defaultTo("translation"))
    .execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.alterTable("dead_letters").dropColumn("write_path").execute();
}
