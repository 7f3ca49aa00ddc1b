import { createHash, randomBytes } from "node:crypto";
import type { Kysely } from "kysely";
import { Code, ConnectError } from "@connectrpc/connect";
import {
  DEFAULT_PRESIGN_SECONDS,
  MAX_PARTS,
  MAX_PRESIGN_SECONDS,
  MIN_PART_BYTES,
  type ByteRange,
  type CompletedPart,
  type ObjectBody,
  type ObjectRead,
  type ObjectStore,
  type PresignedUrl,
} from "../backends/objects/object-store.js";
import { failedPrecondition, invalidArgument, notFound, tooLarge, type FieldViolation } from "../core/errors.js";
import { contentDisposition, sanitizeFilename } from "./files.names.js";
import * as repo from "./files.repository.js";
import type { FileRow, FilesTables } from "./files.table.js";

export const FILE_KINDS = ["uploaded", "translated"] as const;
export const FILE_STATUSES = ["pending_upload", "uploaded", "processed", "archived"] as const;
export type FileKind = (typeof FILE_KINDS)[number];
export type FileStatus = (typeof FILE_STATUSES)[number];

const HOUR_MICROS = 3_600_000_000;
const DAY_MICROS = 24 * HOUR_MICROS;
/** Days after their last update that files in each status are kept (archived: until deleted). */
export const DEFAULT_RETENTION = { uploadedDays: 7, processedDays: 90, abandonedHours: 24 } as const;
/** Where file contents live in the objects role: `files/<file_id>`; the filename never enters a key. */
export const OBJECT_PREFIX = "files/";
const MAX_METADATA_BYTES = 64 * 1024;
const MAX_BATCH = 1000;

/** What files need of translation: files belong to its sessions. */
export interface SessionDirectory {
  sessionExists(sessionId: string): Promise<boolean>;
  deletedSessions(sessionIds: readonly string[]): Promise<Set<string>>;
}

export interface FilesLimits {
  /** Largest file accepted, in bytes. */
  readonly maxFileBytes: number;
  /** CreateUploadUrl chooses a multipart upload above this size. */
  readonly multipartThresholdBytes: number;
  /** Part size of a multipart upload unless the caller asks for another. */
  readonly partSizeBytes: number;
}

export interface FilesServiceDeps {
  readonly db: Kysely<FilesTables>;
  readonly store: ObjectStore;
  readonly sessions: SessionDirectory;
  readonly limits: FilesLimits;
}

/** A file to register: what Upload's first message and CreateUploadUrl carry. */
export interface FileDescription {
  readonly filename: string;
  readonly contentType: string;
  readonly kind: FileKind | undefined;
  readonly ownerId: string;
  readonly sessionId: string;
  readonly metadata: Record<string, unknown> | undefined;
  /** undefined: not declared. */
  readonly sizeBytes: number | undefined;
  readonly sha256: string;
}

export interface UploadUrlRequest extends FileDescription {
  readonly expiresInSeconds: number;
  readonly multipart: boolean;
  readonly partSizeBytes: number;
}

export interface UploadTarget {
  readonly file: FileRow;
  readonly url?: PresignedUrl;
  readonly expiresAt: Date;
  readonly uploadId?: string;
  readonly partSize?: number;
  readonly parts: readonly { partNumber: number; url: string; offset: number; size: number }[];
  readonly headers: Record<string, string>;
}

export interface CleanupRequest {
  readonly dryRun: boolean;
  readonly uploadedDays?: number;
  readonly processedDays?: number;
  readonly abandonedHours?: number;
}

export interface CleanupResult {
  dryRun: boolean;
  expiredFiles: number;
  abandonedUploads: number;
  abortedMultipartUploads: number;
  orphanObjects: number;
  missingObjects: number;
  sessionFiles: number;
  freedBytes: number;
}

export interface FileStats {
  totalFiles: number;
  totalBytes: number;
  byKind: Record<string, { count: number; bytes: number }>;
  byStatus: Record<string, { count: number; bytes: number }>;
}

export interface FileListing {
  readonly total: number;
  readonly rows: readonly FileRow[];
}

export type FilesService = ReturnType<typeof createFilesService>;

/** When cleanup deletes a file in `status` last changed at `updatedAt` (µs); undefined for never. */
export function expiryOf(status: string, createdAt: number, updatedAt: number): number | undefined {
  switch (status) {
    case "pending_upload":
      return createdAt + DEFAULT_RETENTION.abandonedHours * HOUR_MICROS;
    case "uploaded":
      return updatedAt + DEFAULT_RETENTION.uploadedDays * DAY_MICROS;
    case "processed":
      return updatedAt + DEFAULT_RETENTION.processedDays * DAY_MICROS;
    default:
      return undefined;
  }
}

function newFileId(): string {
  return `f_${randomBytes(12).toString("hex")}`;
}

function requireId(fileId: string, field = "file_id"): string {
  if (fileId === "") throw invalidArgument([{ field, description: "is required" }]);
  if (fileId.length > 64) throw notFound("file", fileId);
  return fileId;
}

function presignSeconds(seconds: number, field: string): number {
  if (seconds === 0) return DEFAULT_PRESIGN_SECONDS;
  if (!Number.isInteger(seconds) || seconds < 1 || seconds > MAX_PRESIGN_SECONDS) {
    throw invalidArgument([{ field, description: `must be from 1 to ${MAX_PRESIGN_SECONDS} seconds (7 days)` }]);
  }
  return seconds;
}

/** File rules over `file_metadata` and the objects role. */
export function createFilesService(deps: FilesServiceDeps) {
  const { db, store, limits } = deps;
  const now = () => Date.now() * 1000;

  /** Checks a description (every violation at once) and the session it names; the row to insert. */
  async function register(description: FileDescription, extra: Partial<FileRow> = {}): Promise<FileRow> {
    const violations: FieldViolation[] = [];
    let filename = "";
    try {
      filename = sanitizeFilename(description.filename);
    } catch (err) {
      violations.push(...fieldViolations(err));
    }
    const contentType = description.contentType || "application/octet-stream";
    if (contentType.length > 255 || !/^[\x21-\x7e]+\/[\x20-\x7e]+$/.test(contentType)) {
      violations.push({ field: "content_type", description: "must be a MIME type (type/subtype, printable ASCII, at most 255 characters)" });
    }
    if (description.ownerId.length > 128) violations.push({ field: "owner_id", description: "must be at most 128 characters" });
    if (description.sessionId.length > 64) violations.push({ field: "session_id", description: "must be at most 64 characters" });
    if (description.sha256 !== "" && !/^[0-9a-f]{64}$/.test(description.sha256)) {
      violations.push({ field: "sha256", description: "must be 64 lower-case hex digits" });
    }
    const size = description.sizeBytes;
    if (size !== undefined && (!Number.isSafeInteger(size) || size < 0)) violations.push({ field: "size_bytes", description: "must be 0 or more" });
    const metadata = description.metadata === undefined ? null : JSON.stringify(description.metadata);
    if (metadata !== null && Buffer.byteLength(metadata) > MAX_METADATA_BYTES) {
      violations.push({ field: "metadata", description: `must be at most ${MAX_METADATA_BYTES} bytes as JSON` });
    }
    if (violations.length > 0) throw invalidArgument(violations);
    if (size !== undefined && size > limits.maxFileBytes) throw tooLarge(`size_bytes ${size} is over the largest file accepted (${limits.maxFileBytes} bytes)`);
    if (description.sessionId !== "" && !(await deps.sessions.sessionExists(description.sessionId))) throw notFound("session", description.sessionId);
    const at = now();
    const fileId = newFileId();
    return {
      file_id: fileId,
      kind: description.kind ?? "uploaded",
      status: "pending_upload",
      filename,
      content_type: contentType,
      size_bytes: size ?? 0,
      sha256: description.sha256,
      owner_id: description.ownerId,
      session_id: description.sessionId,
      metadata,
      object_key: OBJECT_PREFIX + fileId,
      upload_id: null,
      part_size: null,
      created_at: at,
      updated_at: at,
      expires_at: expiryOf("pending_upload", at, at) ?? null,
      ...extra,
    };
  }

  async function get(fileId: string): Promise<FileRow> {
    const row = await repo.findFile(db, requireId(fileId));
    if (!row) throw notFound("file", fileId);
    return row;
  }

  async function markUploaded(row: FileRow, size: number, sha256: string): Promise<FileRow> {
    const at = now();
    const changes = { status: "uploaded", size_bytes: size, sha256, upload_id: null, updated_at: at, expires_at: expiryOf("uploaded", row.created_at, at) ?? null };
    if (!(await repo.updateFile(db, row.file_id, changes, "pending_upload"))) return get(row.file_id);
    return { ...row, ...changes };
  }

  async function requireUploaded(fileId: string): Promise<FileRow> {
    const row = await get(fileId);
    if (row.status === "pending_upload") {
      throw failedPrecondition("the file's upload is not complete", { type: "STATUS", subject: "file_id", description: `file ${fileId} is pending_upload` });
    }
    return row;
  }

  async function exists(key: string): Promise<boolean> {
    try {
      await store.stat(key);
      return true;
    } catch (err) {
      if (err instanceof ConnectError && err.code === Code.NotFound) return false;
      throw err;
    }
  }

  /** Removes files' rows first, then their objects and uploads: a crash in between leaves objects for cleanup's reconciliation, never a row without its object. */
  async function removeFiles(rows: readonly FileRow[]): Promise<void> {
    if (rows.length === 0) return;
    await repo.deleteFiles(db, rows.map((r) => r.file_id));
    for (const row of rows) if (row.upload_id) await store.abortMultipartUpload(row.object_key, row.upload_id);
    await store.deleteMany(rows.map((r) => r.object_key));
  }

  return {
    get,
    requireUploaded,

    /** Stores `body` as a new file: the row first (pending_upload), then the object, then the row marked uploaded. */
    async upload(description: FileDescription, body: ObjectBody): Promise<FileRow> {
      const row = await register(description);
      await repo.insertFile(db, row);
      try {
        const stored = await store.put(row.object_key, body, {
          contentType: row.content_type,
          maxBytes: limits.maxFileBytes,
          ...(description.sizeBytes !== undefined ? { expectedSize: description.sizeBytes } : {}),
          ...(row.sha256 !== "" ? { expectedSha256: row.sha256 } : {}),
        });
        return await markUploaded(row, stored.size, stored.sha256);
      } catch (err) {
        // nothing was stored (the store's put leaves nothing behind): forget the file
        await repo.deleteFiles(db, [row.file_id]).catch(() => {});
        throw err;
      }
    },

    async createUploadUrl(request: UploadUrlRequest): Promise<UploadTarget> {
      if (request.sizeBytes === undefined || request.sizeBytes < 1) {
        throw invalidArgument([{ field: "size_bytes", description: "is required: the exact size of the upload, 1 or more" }]);
      }
      const seconds = presignSeconds(request.expiresInSeconds, "expires_in_seconds");
      const size = request.sizeBytes;
      const multipart = request.multipart || size > limits.multipartThresholdBytes;
      let partSize = request.partSizeBytes || limits.partSizeBytes;
      if (request.partSizeBytes !== 0 && request.partSizeBytes < MIN_PART_BYTES) {
        throw invalidArgument([{ field: "part_size_bytes", description: `must be at least ${MIN_PART_BYTES} bytes (5 MiB)` }]);
      }
      if (multipart) partSize = Math.max(partSize, Math.ceil(size / MAX_PARTS));
      const row = await register(request, multipart ? { part_size: partSize } : {});
      if (!multipart) {
        await repo.insertFile(db, row);
        const url = await store.presignPut(row.object_key, { expiresInSeconds: seconds });
        return { file: row, url, expiresAt: url.expiresAt, parts: [], headers: { "Content-Type": row.content_type } };
      }
      // the row first: cleanup leaves alone an upload whose key a pending file holds
      await repo.insertFile(db, row);
      let uploadId: string;
      try {
        uploadId = await store.createMultipartUpload(row.object_key, { contentType: row.content_type });
        await repo.updateFile(db, row.file_id, { upload_id: uploadId });
      } catch (err) {
        await repo.deleteFiles(db, [row.file_id]).catch(() => {});
        throw err;
      }
      const withUpload = { ...row, upload_id: uploadId };
      const count = Math.ceil(size / partSize);
      const parts = [];
      let expiresAt = new Date(Date.now() + seconds * 1000);
      for (let n = 1; n <= count; n++) {
        const url = await store.presignUploadPart(row.object_key, uploadId, n, { expiresInSeconds: seconds });
        expiresAt = url.expiresAt;
        const offset = (n - 1) * partSize;
        parts.push({ partNumber: n, url: url.url, offset, size: Math.min(partSize, size - offset) });
      }
      return { file: withUpload, expiresAt, uploadId, partSize, parts, headers: {} };
    },

    /** Joins a multipart upload's parts, then checks the object against the declared size and SHA-256. */
    async completeUpload(fileId: string, parts: readonly CompletedPart[]): Promise<FileRow> {
      let row = await get(fileId);
      if (row.status !== "pending_upload") return row;
      if (row.upload_id) {
        if (parts.length === 0) throw invalidArgument([{ field: "parts", description: "is required for a multipart upload: every part's number and ETag" }]);
        try {
          await store.completeMultipartUpload(row.object_key, row.upload_id, [...parts].sort((a, b) => a.partNumber - b.partNumber));
        } catch (err) {
          if (!(err instanceof ConnectError && err.code === Code.NotFound)) throw err;
          // Joined already? A call on another instance (or one that died before marking the file) did it: the
          // object is there, and is verified below like any other.
          const current = await get(fileId);
          if (current.status !== "pending_upload") return current;
          if (!(await exists(row.object_key))) {
            throw failedPrecondition("the multipart upload is gone", { type: "UPLOAD", subject: "file_id", description: "it was aborted or expired; start a new upload" });
          }
        }
        await repo.updateFile(db, row.file_id, { upload_id: null, updated_at: now() }, "pending_upload");
        row = { ...row, upload_id: null };
      }
      let info;
      try {
        info = await store.stat(row.object_key);
      } catch (err) {
        if (err instanceof ConnectError && err.code === Code.NotFound) {
          throw failedPrecondition("the file's upload is not complete", { type: "UPLOAD", subject: "file_id", description: "no content has been uploaded yet" });
        }
        throw err;
      }
      if (info.size !== row.size_bytes) {
        throw failedPrecondition("the upload is not the size it was declared to be", {
          type: "SIZE",
          subject: "size_bytes",
          description: `declared ${row.size_bytes} bytes, uploaded ${info.size}`,
        });
      }
      const sha256 = info.sha256 ?? (await hashObject(store, row.object_key));
      if (row.sha256 !== "" && sha256 !== row.sha256) {
        throw failedPrecondition("the upload does not match its SHA-256", { type: "CHECKSUM", subject: "sha256", description: `declared ${row.sha256}, uploaded ${sha256}` });
      }
      return markUploaded(row, info.size, sha256);
    },

    async downloadUrl(fileId: string, expiresInSeconds: number, inline: boolean): Promise<{ file: FileRow; url: PresignedUrl }> {
      const seconds = presignSeconds(expiresInSeconds, "expires_in_seconds");
      const file = await requireUploaded(fileId);
      const url = await store.presignGet(file.object_key, {
        expiresInSeconds: seconds,
        contentDisposition: contentDisposition(file.filename, inline),
        contentType: file.content_type,
      });
      return { file, url };
    },

    /** The file's bytes (or `range` of them). */
    async download(fileId: string, range?: ByteRange): Promise<{ file: FileRow; read: ObjectRead }> {
      const file = await requireUploaded(fileId);
      const read = await store.get(file.object_key, range ? { range } : {});
      return { file, read };
    },

    async update(fileId: string, changes: { status?: FileStatus; metadata?: Record<string, unknown> }): Promise<FileRow> {
      const row = await get(fileId);
      const set: Partial<FileRow> = {};
      if (changes.status !== undefined && changes.status !== row.status) {
        if (changes.status === "pending_upload" || row.status === "pending_upload") {
          throw failedPrecondition("a pending upload changes status only through its upload", { type: "STATUS", subject: "status", description: `file ${fileId} is ${row.status}` });
        }
        set.status = changes.status;
      }
      if (changes.metadata !== undefined) {
        const text = JSON.stringify(changes.metadata);
        if (Buffer.byteLength(text) > MAX_METADATA_BYTES) throw invalidArgument([{ field: "metadata", description: `must be at most ${MAX_METADATA_BYTES} bytes as JSON` }]);
        set.metadata = text;
      }
      if (Object.keys(set).length === 0) return row;
      const at = now();
      const status = set.status ?? row.status;
      const next = { ...set, updated_at: at, expires_at: expiryOf(status, row.created_at, at) ?? null };
      await repo.updateFile(db, fileId, next);
      return { ...row, ...next };
    },

    async remove(fileId: string): Promise<void> {
      await removeFiles([await get(fileId)]);
    },

    async removeMany(fileIds: readonly string[]): Promise<{ deleted: string[]; notFound: string[] }> {
      if (fileIds.length === 0 || fileIds.length > MAX_BATCH) throw invalidArgument([{ field: "file_ids", description: `must hold 1 to ${MAX_BATCH} ids` }]);
      fileIds.forEach((id, i) => requireId(id, `file_ids[${i}]`));
      const rows = await repo.findFiles(db, [...new Set(fileIds)]);
      await removeFiles(rows);
      const found = new Set(rows.map((r) => r.file_id));
      return { deleted: [...found], notFound: [...new Set(fileIds)].filter((id) => !found.has(id)) };
    },

    list: async (filter: repo.FileFilter, limit: number, position: { after?: readonly [number, string]; offset?: number }): Promise<FileListing> => ({
      total: await repo.countFiles(db, filter),
      rows: await repo.listFiles(db, filter, limit, position),
    }),

    async stats(): Promise<FileStats> {
      const stats: FileStats = { totalFiles: 0, totalBytes: 0, byKind: {}, byStatus: {} };
      for (const kind of FILE_KINDS) stats.byKind[kind] = { count: 0, bytes: 0 };
      for (const status of FILE_STATUSES) stats.byStatus[status] = { count: 0, bytes: 0 };
      for (const { kind, status, n, bytes } of await repo.statusCounts(db)) {
        stats.totalFiles += n;
        stats.totalBytes += bytes;
        const k = (stats.byKind[kind] ??= { count: 0, bytes: 0 });
        k.count += n;
        k.bytes += bytes;
        const s = (stats.byStatus[status] ??= { count: 0, bytes: 0 });
        s.count += n;
        s.bytes += bytes;
      }
      return stats;
    },

    cleanup: (request: CleanupRequest) => cleanupFiles(deps, removeFiles, request),
  };
}

/** SHA-256 of a stored object, read once as a stream (bounded memory whatever its size). */
async function hashObject(store: ObjectStore, key: string): Promise<string> {
  const { body } = await store.get(key);
  const hash = createHash("sha256");
  for await (const chunk of body) hash.update(chunk as Buffer);
  return hash.digest("hex");
}

function fieldViolations(err: unknown): FieldViolation[] {
  if (!(err instanceof ConnectError)) throw err;
  const violations: FieldViolation[] = [];
  for (const detail of err.details) {
    if ("value" in detail && detail.value && typeof detail.value === "object" && "fieldViolations" in detail.value) {
      for (const v of (detail.value as { fieldViolations: { field: string; description: string }[] }).fieldViolations) violations.push({ field: v.field, description: v.description });
    }
  }
  if (violations.length === 0) throw err;
  return violations;
}

const ROUND = 500;

/**
 * Cleanup (SPEC §4): files past their status's retention or expiry, uploads abandoned, files of
 * deleted sessions; then reconciles the store with the metadata both ways, and aborts multipart
 * uploads no pending file owns. Runs in slices of ROUND rows, so no lock is held long.
 */
async function cleanupFiles(deps: FilesServiceDeps, removeFiles: (rows: readonly FileRow[]) => Promise<void>, request: CleanupRequest): Promise<CleanupResult> {
  const { db, store } = deps;
  const days = {
    uploaded_days: request.uploadedDays ?? DEFAULT_RETENTION.uploadedDays,
    processed_days: request.processedDays ?? DEFAULT_RETENTION.processedDays,
    abandoned_hours: request.abandonedHours ?? DEFAULT_RETENTION.abandonedHours,
  };
  const violations = Object.entries(days)
    .filter(([, n]) => !Number.isInteger(n) || n < 1)
    .map(([field]) => ({ field, description: "must be 1 or more" }));
  if (violations.length > 0) throw invalidArgument(violations);
  const at = Date.now() * 1000;
  // what changed after this (less a margin for the store's clock and second-granular times) is left to the next run
  const settledBefore = at - 2_000_000;
  const abandonedBefore = at - days.abandoned_hours * HOUR_MICROS;
  const result: CleanupResult = {
    dryRun: request.dryRun,
    expiredFiles: 0,
    abandonedUploads: 0,
    abortedMultipartUploads: 0,
    orphanObjects: 0,
    missingObjects: 0,
    sessionFiles: 0,
    freedBytes: 0,
  };
  const seen = new Set<string>(); // a dry run deletes nothing, so each slice would find the same rows again
  const drain = async (find: () => Promise<FileRow[]>, count: (n: number) => void) => {
    for (;;) {
      const rows = (await find()).filter((r) => !seen.has(r.file_id));
      if (rows.length === 0) return;
      count(rows.length);
      result.freedBytes += rows.reduce((sum, r) => sum + Number(r.size_bytes), 0);
      if (request.dryRun) rows.forEach((r) => seen.add(r.file_id));
      else await removeFiles(rows);
    }
  };
  const rules = [
    { status: "uploaded", updatedBefore: at - days.uploaded_days * DAY_MICROS, expiresBefore: at },
    { status: "processed", updatedBefore: at - days.processed_days * DAY_MICROS, expiresBefore: at },
  ];
  for (const rule of rules) await drain(() => repo.expiredFiles(db, rule, ROUND + seen.size), (n) => (result.expiredFiles += n));
  await drain(() => repo.expiredFiles(db, { status: "pending_upload", createdBefore: abandonedBefore }, ROUND + seen.size), (n) => (result.abandonedUploads += n));

  // Files of deleted translation sessions go with them.
  for (let after = ""; ; ) {
    const ids = await repo.sessionIds(db, after, ROUND);
    const last = ids[ids.length - 1];
    if (last === undefined) break;
    after = last;
    const gone = await deps.sessions.deletedSessions(ids.filter((id) => id !== ""));
    if (gone.size === 0) continue;
    const rows = (await repo.filesOfSessions(db, [...gone])).filter((r) => !seen.has(r.file_id));
    result.sessionFiles += rows.length;
    result.freedBytes += rows.reduce((sum, r) => sum + Number(r.size_bytes), 0);
    if (request.dryRun) rows.forEach((r) => seen.add(r.file_id));
    else await removeFiles(rows);
  }

  // Both listings in key order, merged: objects no row names, and stored files whose object is gone.
  const orphans: string[] = [];
  const missing: string[] = [];
  const objects = listObjects(store);
  const rows = listRows(db);
  let object = await objects.next();
  let row = await rows.next();
  while (!object.done || !row.done) {
    const cmp = object.done ? 1 : row.done ? -1 : compareUtf8(object.value.key, row.value.object_key);
    if (cmp < 0 && !object.done) {
      // a row is always written before its object, so an object with no row is debris (an old crash, a delete cut short)
      if (object.value.lastModified.getTime() * 1000 < settledBefore) {
        orphans.push(object.value.key);
        result.orphanObjects++;
      }
      object = await objects.next();
    } else if (cmp > 0 && !row.done) {
      const stored = row.value.status !== "pending_upload" && row.value.updated_at < settledBefore;
      if (stored && !seen.has(row.value.file_id)) missing.push(row.value.file_id);
      row = await rows.next();
    } else {
      object = await objects.next();
      row = await rows.next();
    }
    if (orphans.length >= ROUND) {
      const batch = orphans.splice(0);
      if (!request.dryRun) await store.deleteMany(batch);
    }
  }
  if (!request.dryRun) {
    await store.deleteMany(orphans);
    for (let i = 0; i < missing.length; i += ROUND) await repo.deleteFiles(db, missing.slice(i, i + ROUND));
  }
  result.missingObjects = missing.length;

  // Multipart uploads (presigned ones, and a streamed put's own) that no pending file owns any more.
  const uploads = await store.listMultipartUploads({ prefix: OBJECT_PREFIX });
  const owned = await repo.ownedUploads(db, uploads.map((u) => u.uploadId));
  for (const upload of uploads) {
    if (owned.has(upload.uploadId)) continue;
    // a streamed put in progress (or a presigned upload being registered) has no row naming its upload, only its key
    const recent = upload.initiated.getTime() * 1000 >= abandonedBefore;
    if (recent && (await pendingRowFor(db, upload.key))) continue;
    result.abortedMultipartUploads++;
    if (!request.dryRun) await store.abortMultipartUpload(upload.key, upload.uploadId);
  }
  return result;
}

async function pendingRowFor(db: Kysely<FilesTables>, objectKey: string): Promise<boolean> {
  const row = await db.selectFrom("file_metadata").select("file_id").where("object_key", "=", objectKey).where("status", "=", "pending_upload").executeTakeFirst();
  return row !== undefined;
}

async function* listObjects(store: ObjectStore) {
  let cursor: string | undefined;
  for (;;) {
    const page = await store.list({ prefix: OBJECT_PREFIX, limit: 1000, ...(cursor !== undefined ? { cursor } : {}) });
    yield* page.items;
    if (page.nextCursor === undefined) return;
    cursor = page.nextCursor;
  }
}

async function* listRows(db: Kysely<FilesTables>) {
  for (let after = ""; ; ) {
    const page = await repo.filesByObjectKey(db, after, 1000);
    yield* page;
    const last = page[page.length - 1];
    if (!last || page.length < 1000) return;
    after = last.object_key;
  }
}

function compareUtf8(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a, "utf8"), Buffer.from(b, "utf8"));
}
