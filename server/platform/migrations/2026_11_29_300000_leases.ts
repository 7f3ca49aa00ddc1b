import type { Kysely } from "kysely";
import { columnTypes } from "../../backends/sql/column-types.js";

/** `leases`: which instance may run a scheduled job (cleanup, ...) until when. */
export async function up(db: Kysely<unknown>): Promise<void> {
  const t = columnTypes(db);
  await db.schema
    .createTable("leases")
    .addColumn("name", t.id(64), (c) => c.primaryKey())
    .addColumn("holder", t.varchar(128), (c) => c.notNull())
    .addColumn("expires_at", t.micros(), (c) => c.notNull())
    .modifyEnd(t.tableOptions())
    .execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.dropTable("leases").execute();
}
