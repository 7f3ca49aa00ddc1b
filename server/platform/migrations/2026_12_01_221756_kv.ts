import { sql, type Kysely } from "kysely";
import { columnTypes, isMysql } from "../../backends/sql/column-types.js";

/**
 * The `kv` role's embedded store: `kv_entries` (values, counters, token buckets) and `kv_members`
 * (small sets, one row per member), each row with its own expiry (microseconds since the epoch, like
 * every time in the schema; null: none). Keys and members are compared byte for byte: VARBINARY on
 * MySQL (whose text collations ignore trailing spaces), TEXT on SQLite (binary collation).
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  const t = columnTypes(db);
  const mysql = isMysql(db);
  const bytes = (n: number) => sql.raw(mysql ? `varbinary(${n})` : "text");
  await db.schema
    .createTable("kv_entries")
    .addColumn("k", bytes(1024), (c) => c.primaryKey())
    .addColumn("v", t.json(), (c) => c.notNull())
    .addColumn("expires_at", t.micros())
    .modifyEnd(t.tableOptions())
    .execute();
  await db.schema.createIndex("kv_entries_expires_at").on("kv_entries").column("expires_at").execute();
  await db.schema
    .createTable("kv_members")
    .addColumn("k", bytes(1024), (c) => c.notNull())
    .addColumn("member", bytes(512), (c) => c.notNull())
    .addColumn("expires_at", t.micros())
    .addPrimaryKeyConstraint("kv_members_pk", ["k", "member"])
    .modifyEnd(t.tableOptions())
    .execute();
  await db.schema.createIndex("kv_members_expires_at").on("kv_members").column("expires_at").execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.dropTable("kv_members").execute();
  await db.schema.dropTable("kv_entries").execute();
}
