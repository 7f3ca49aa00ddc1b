import { sql, type Kysely } from "kysely";
import { columnTypes } from "../../backends/sql/column-types.js";

/**
 * `audit_logs`: the append-only, hash-chained record of audit entries (`seq` is the chain position);
 * `audit_chain`: the chain's `head` (last position and hash, locked by every flush that appends) and
 * `anchor` (the last position retention removed, which the first stored entry must follow);
 * `audit_projection`: how far the search index has caught up with the record.
 */
/** The hash before the first entry. */
const GENESIS_HASH = "0".repeat(64);

export async function up(db: Kysely<unknown>): Promise<void> {
  const t = columnTypes(db);
  await db.schema
    .createTable("audit_logs")
    .addColumn("id", t.id(64), (c) => c.primaryKey())
    .addColumn("seq", sql.raw("bigint"), (c) => c.notNull().unique())
    .addColumn("occurred_at", t.micros(), (c) => c.notNull())
    .addColumn("recorded_at", t.micros(), (c) => c.notNull())
    .addColumn("actor_type", t.varchar(32))
    .addColumn("actor_id", t.varchar(128))
    .addColumn("actor_name", t.varchar(255))
    .addColumn("action", t.varchar(128), (c) => c.notNull())
    .addColumn("resource_type", t.varchar(64))
    .addColumn("resource_id", t.varchar(255))
    .addColumn("result", t.varchar(16), (c) => c.notNull())
    .addColumn("ip", t.varchar(64))
    .addColumn("user_agent", t.varchar(512))
    .addColumn("request_id", t.varchar(128))
    .addColumn("message", t.text())
    .addColumn("details", t.json())
    .addColumn("prev_hash", t.id(64), (c) => c.notNull())
    .addColumn("hash", t.id(64), (c) => c.notNull())
    .modifyEnd(t.tableOptions())
    .execute();
  await db.schema
    .createTable("audit_chain")
    .addColumn("name", t.id(16), (c) => c.primaryKey())
    .addColumn("seq", sql.raw("bigint"), (c) => c.notNull())
    .addColumn("hash", t.id(64), (c) => c.notNull())
    .addColumn("recorded_at", t.micros(), (c) => c.notNull())
    .modifyEnd(t.tableOptions())
    .execute();
  await db
    .withTables<{ audit_chain: { name: string; seq: number; hash: string; recorded_at: number } }>()
    .insertInto("audit_chain")
    .values([
      { name: "head", seq: 0, hash: GENESIS_HASH, recorded_at: 0 },
      { name: "anchor", seq: 0, hash: GENESIS_HASH, recorded_at: 0 },
    ])
    .execute();
  await db.schema
    .createTable("audit_projection")
    .addColumn("name", t.id(64), (c) => c.primaryKey())
    .addColumn("seq", sql.raw("bigint"), (c) => c.notNull())
    .modifyEnd(t.tableOptions())
    .execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  for (const table of ["audit_projection", "audit_chain", "audit_logs"]) await db.schema.dropTable(table).execute();
}
