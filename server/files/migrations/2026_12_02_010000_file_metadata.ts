import type { Kysely } from "kysely";
import { columnTypes } from "../../backends/sql/column-types.js";

/**
 * `file_metadata`: one row per file; its content is the object `object_key` in the objects role.
 * `upload_id` is set while a presigned multipart upload is open (cleanup aborts it when abandoned).
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  const t = columnTypes(db);
  await db.schema
    .createTable("file_metadata")
    .addColumn("file_id", t.id(64), (c) => c.primaryKey())
    .addColumn("kind", t.id(16), (c) => c.notNull())
    .addColumn("status", t.id(16), (c) => c.notNull())
    .addColumn("filename", t.varchar(255), (c) => c.notNull())
    .addColumn("content_type", t.varchar(255), (c) => c.notNull())
    .addColumn("size_bytes", t.micros(), (c) => c.notNull())
    .addColumn("sha256", t.id(64), (c) => c.notNull())
    .addColumn("owner_id", t.id(128), (c) => c.notNull())
    .addColumn("session_id", t.id(64), (c) => c.notNull())
    .addColumn("metadata", t.json())
    .addColumn("object_key", t.id(255), (c) => c.notNull())
    .addColumn("upload_id", t.id(255))
    .addColumn("part_size", t.micros())
    .addColumn("created_at", t.micros(), (c) => c.notNull())
    .addColumn("updated_at", t.micros(), (c) => c.notNull())
    .addColumn("expires_at", t.micros())
    .modifyEnd(t.tableOptions())
    .execute();
  await db.schema.createIndex("file_metadata_created").on("file_metadata").columns(["created_at", "file_id"]).execute();
  await db.schema.createIndex("file_metadata_session").on("file_metadata").columns(["session_id", "created_at"]).execute();
  await db.schema.createIndex("file_metadata_owner").on("file_metadata").columns(["owner_id", "created_at"]).execute();
  await db.schema.createIndex("file_metadata_status").on("file_metadata").columns(["status", "updated_at"]).execute();
  await db.schema.createIndex("file_metadata_object").on("file_metadata").columns(["object_key"]).execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.dropTable("file_metadata").execute();
}
