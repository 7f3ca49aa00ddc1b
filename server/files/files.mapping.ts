import { timestampFromMs, type Timestamp } from "@bufbuild/protobuf/wkt";
import { create } from "@bufbuild/protobuf";
import type { JsonObject } from "@bufbuild/protobuf";
import { FileInfoSchema, FileKind, FileStatus, type FileInfo } from "../../gen/persistence/v1/storage_pb.js";
import { invalidArgument } from "../core/errors.js";
import { TIME_PROBLEM, timestampMicros } from "../records/fields.js";
import { FILE_KINDS, FILE_STATUSES, type FileKind as Kind, type FileStatus as Status } from "./files.service.js";
import type { FileRow } from "./files.table.js";

/** Between the contract's messages and the files domain's rows. */

const KIND_OF: Record<number, Kind> = { [FileKind.UPLOADED]: "uploaded", [FileKind.TRANSLATED]: "translated" };
const STATUS_OF: Record<number, Status> = {
  [FileStatus.PENDING_UPLOAD]: "pending_upload",
  [FileStatus.UPLOADED]: "uploaded",
  [FileStatus.PROCESSED]: "processed",
  [FileStatus.ARCHIVED]: "archived",
};
const KIND_ENUM = Object.fromEntries(Object.entries(KIND_OF).map(([n, k]) => [k, Number(n)])) as Record<Kind, FileKind>;
const STATUS_ENUM = Object.fromEntries(Object.entries(STATUS_OF).map(([n, s]) => [s, Number(n)])) as Record<Status, FileStatus>;

/** A kind from the contract; undefined for unspecified. */
export function kindName(kind: FileKind, field = "kind"): Kind | undefined {
  if (kind === FileKind.UNSPECIFIED) return undefined;
  const name = KIND_OF[kind];
  if (!name) throw invalidArgument([{ field, description: `must be one of ${FILE_KINDS.join(", ")}` }]);
  return name;
}

/** A status from the contract; undefined for unspecified. */
export function statusName(status: FileStatus, field = "status"): Status | undefined {
  if (status === FileStatus.UNSPECIFIED) return undefined;
  const name = STATUS_OF[status];
  if (!name) throw invalidArgument([{ field, description: `must be one of ${FILE_STATUSES.join(", ")}` }]);
  return name;
}

/** A size from the contract: undefined for 0 (proto3 cannot tell unset from 0). */
export function declaredSize(size: bigint, field = "size_bytes"): number | undefined {
  if (size === 0n) return undefined;
  if (size < 0n || size > BigInt(Number.MAX_SAFE_INTEGER)) throw invalidArgument([{ field, description: "must be 0 or more" }]);
  return Number(size);
}

export function micros(field: string, ts: Timestamp | undefined): number | undefined {
  if (!ts) return undefined;
  const value = timestampMicros(ts);
  if (value === undefined) throw invalidArgument([{ field, description: TIME_PROBLEM }]);
  return value;
}

export function timestampOfMicros(us: number): Timestamp {
  return timestampFromMs(Math.floor(us / 1000));
}

export function fileInfo(row: FileRow): FileInfo {
  return create(FileInfoSchema, {
    fileId: row.file_id,
    kind: KIND_ENUM[row.kind as Kind] ?? FileKind.UNSPECIFIED,
    status: STATUS_ENUM[row.status as Status] ?? FileStatus.UNSPECIFIED,
    filename: row.filename,
    contentType: row.content_type,
    sizeBytes: BigInt(row.size_bytes),
    sha256: row.sha256,
    ownerId: row.owner_id,
    sessionId: row.session_id,
    ...(row.metadata !== null ? { metadata: JSON.parse(row.metadata) as JsonObject } : {}),
    createdAt: timestampOfMicros(Number(row.created_at)),
    updatedAt: timestampOfMicros(Number(row.updated_at)),
    ...(row.expires_at !== null ? { expiresAt: timestampOfMicros(Number(row.expires_at)) } : {}),
  });
}
