import type { Kysely } from "kysely";
import type { FileRow, FilesTables } from "./files.table.js";

type Db = Kysely<FilesTables>;

/** Free functions, one query each, over `file_metadata`. */

export async function insertFile(db: Db, row: FileRow): Promise<void> {
  await db.insertInto("file_metadata").values(row).execute();
}

export async function findFile(db: Db, fileId: string): Promise<FileRow | undefined> {
  return db.selectFrom("file_metadata").selectAll().where("file_id", "=", fileId).executeTakeFirst();
}

/** Sets `changes` on a file if it is still in status `from` (when given); whether a row changed. */
export async function updateFile(db: Db, fileId: string, changes: Partial<FileRow>, from?: string): Promise<boolean> {
  let query = db.updateTable("file_metadata").set(changes).where("file_id", "=", fileId);
  if (from !== undefined) query = query.where("status", "=", from);
  const result = await query.executeTakeFirst();
  return Number(result.numUpdatedRows) > 0;
}

export async function deleteFiles(db: Db, fileIds: readonly string[]): Promise<number> {
  if (fileIds.length === 0) return 0;
  const result = await db.deleteFrom("file_metadata").where("file_id", "in", [...fileIds]).executeTakeFirst();
  return Number(result.numDeletedRows);
}

export async function findFiles(db: Db, fileIds: readonly string[]): Promise<FileRow[]> {
  if (fileIds.length === 0) return [];
  return db.selectFrom("file_metadata").selectAll().where("file_id", "in", [...fileIds]).execute();
}

export interface FileFilter {
  readonly kind?: string;
  readonly status?: string;
  readonly ownerId?: string;
  readonly sessionId?: string;
  /** created_at >= from (µs). */
  readonly from?: number;
  /** created_at < to (µs). */
  readonly to?: number;
}

function filtered(db: Db, filter: FileFilter) {
  let query = db.selectFrom("file_metadata");
  if (filter.kind !== undefined) query = query.where("kind", "=", filter.kind);
  if (filter.status !== undefined) query = query.where("status", "=", filter.status);
  if (filter.ownerId !== undefined) query = query.where("owner_id", "=", filter.ownerId);
  if (filter.sessionId !== undefined) query = query.where("session_id", "=", filter.sessionId);
  if (filter.from !== undefined) query = query.where("created_at", ">=", filter.from);
  if (filter.to !== undefined) query = query.where("created_at", "<", filter.to);
  return query;
}

export async function countFiles(db: Db, filter: FileFilter): Promise<number> {
  const row = await filtered(db, filter).select((eb) => eb.fn.countAll<number>().as("n")).executeTakeFirstOrThrow();
  return Number(row.n);
}

/** Newest first (created_at, then file_id descending); `after` is the last row of the previous page. */
export async function listFiles(db: Db, filter: FileFilter, limit: number, position: { after?: readonly [number, string]; offset?: number }): Promise<FileRow[]> {
  let query = filtered(db, filter).selectAll();
  const after = position.after;
  if (after) {
    query = query.where((eb) => eb.or([eb("created_at", "<", after[0]), eb.and([eb("created_at", "=", after[0]), eb("file_id", "<", after[1])])]));
  }
  query = query.orderBy("created_at", "desc").orderBy("file_id", "desc").limit(limit);
  if (!after && position.offset) query = query.offset(position.offset);
  return query.execute();
}

/** Count and bytes per kind and status. */
export async function statusCounts(db: Db): Promise<{ kind: string; status: string; n: number; bytes: number }[]> {
  const rows = await db
    .selectFrom("file_metadata")
    .select(["kind", "status", (eb) => eb.fn.countAll<number>().as("n"), (eb) => eb.fn.sum<number>("size_bytes").as("bytes")])
    .groupBy(["kind", "status"])
    .execute();
  return rows.map((r) => ({ kind: r.kind, status: r.status, n: Number(r.n), bytes: Number(r.bytes ?? 0) }));
}

/** Files cleanup may delete, oldest first: in `status` and updated before `before` (µs), or past their expires_at. */
export async function expiredFiles(db: Db, rule: { status: string; updatedBefore?: number; createdBefore?: number; expiresBefore?: number }, limit: number): Promise<FileRow[]> {
  let query = db.selectFrom("file_metadata").selectAll().where("status", "=", rule.status);
  const { updatedBefore, createdBefore, expiresBefore } = rule;
  query = query.where((eb) => {
    const any = [];
    if (updatedBefore !== undefined) any.push(eb("updated_at", "<", updatedBefore));
    if (createdBefore !== undefined) any.push(eb("created_at", "<", createdBefore));
    if (expiresBefore !== undefined) any.push(eb.and([eb("expires_at", "is not", null), eb("expires_at", "<", expiresBefore)]));
    return eb.or(any);
  });
  return query.orderBy("file_id").limit(limit).execute();
}

/** Distinct session ids files belong to, after `after`, in order. */
export async function sessionIds(db: Db, after: string, limit: number): Promise<string[]> {
  const rows = await db
    .selectFrom("file_metadata")
    .select("session_id")
    .distinct()
    .where("session_id", ">", after)
    .orderBy("session_id")
    .limit(limit)
    .execute();
  return rows.map((r) => r.session_id);
}

export async function filesOfSessions(db: Db, sessions: readonly string[]): Promise<FileRow[]> {
  if (sessions.length === 0) return [];
  return db.selectFrom("file_metadata").selectAll().where("session_id", "in", [...sessions]).execute();
}

/** Rows in object-key order after `after` (for reconciling with the store's listing). */
export async function filesByObjectKey(db: Db, after: string, limit: number): Promise<Pick<FileRow, "file_id" | "object_key" | "status" | "updated_at">[]> {
  return db
    .selectFrom("file_metadata")
    .select(["file_id", "object_key", "status", "updated_at"])
    .where("object_key", ">", after)
    .orderBy("object_key")
    .limit(limit)
    .execute();
}

/** Which of these multipart upload ids a pending file owns. */
export async function ownedUploads(db: Db, uploadIds: readonly string[]): Promise<Set<string>> {
  if (uploadIds.length === 0) return new Set();
  const rows = await db.selectFrom("file_metadata").select("upload_id").where("upload_id", "in", [...uploadIds]).where("status", "=", "pending_upload").execute();
  return new Set(rows.map((r) => r.upload_id ?? ""));
}
