import { sql, type Kysely } from "kysely";
import { columnTypes, isMysql } from "../../backends/sql/column-types.js";

/**
 * `users` (one row per user, with its password hash and quota counters) and `user_preferences`.
 * Uniqueness ignores case: `username_key` and `email_key` hold the lower-cased forms under unique
 * indexes, so two instances creating the same name at once cannot both succeed.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  const t = columnTypes(db);
  const bigint = sql.raw(isMysql(db) ? "bigint" : "integer");
  await db.schema
    .createTable("users")
    .addColumn("user_id", t.id(36), (c) => c.primaryKey())
    .addColumn("username", t.id(64), (c) => c.notNull())
    .addColumn("username_key", t.id(64), (c) => c.notNull())
    .addColumn("email", t.varchar(254), (c) => c.notNull())
    .addColumn("email_key", t.varchar(254), (c) => c.notNull())
    .addColumn("display_name", t.varchar(255), (c) => c.notNull())
    .addColumn("status", t.id(16), (c) => c.notNull())
    .addColumn("password_hash", t.id(255), (c) => c.notNull())
    .addColumn("translations_used", bigint, (c) => c.notNull())
    .addColumn("translations_limit", bigint, (c) => c.notNull())
    .addColumn("translations_period", t.integer(), (c) => c.notNull())
    .addColumn("storage_bytes_used", bigint, (c) => c.notNull())
    .addColumn("storage_bytes_limit", bigint, (c) => c.notNull())
    .addColumn("created_at", t.micros(), (c) => c.notNull())
    .addColumn("updated_at", t.micros(), (c) => c.notNull())
    .modifyEnd(t.tableOptions())
    .execute();
  await db.schema.createIndex("users_username_key").unique().on("users").column("username_key").execute();
  await db.schema.createIndex("users_email_key").unique().on("users").column("email_key").execute();
  await db.schema
    .createTable("user_preferences")
    .addColumn("user_id", t.id(36), (c) => c.primaryKey())
    .addColumn("language", t.varchar(35))
    .addColumn("theme", t.varchar(64))
    .addColumn("notifications", t.json())
    .addColumn("custom", t.json())
    .addColumn("updated_at", t.micros(), (c) => c.notNull())
    .modifyEnd(t.tableOptions())
    .execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.dropTable("user_preferences").execute();
  await db.schema.dropTable("users").execute();
}
