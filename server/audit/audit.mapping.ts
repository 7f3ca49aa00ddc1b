import { create, type JsonObject } from "@bufbuild/protobuf";
import type { Timestamp } from "@bufbuild/protobuf/wkt";
import { AuditEntrySchema, AuditResult, type AuditEntry } from "../../gen/persistence/v1/audit_pb.js";
import type { AuditRow } from "./audit.fields.js";

/** Stored rows ⇄ the contract's messages, and the two export formats. */

const RESULTS: Readonly<Record<string, AuditResult>> = { success: AuditResult.SUCCESS, failure: AuditResult.FAILURE };

export function timestampOfMicros(micros: number): Timestamp {
  const us = Number(micros);
  return { $typeName: "google.protobuf.Timestamp", seconds: BigInt(Math.floor(us / 1_000_000)), nanos: (us % 1_000_000) * 1000 };
}

/** RFC 3339 UTC with the stored microseconds. */
export function isoOfMicros(micros: number): string {
  const us = Number(micros);
  const base = new Date(Math.floor(us / 1000)).toISOString();
  const fraction = String(us % 1_000_000).padStart(6, "0");
  return `${base.slice(0, 19)}.${fraction}Z`;
}

export function entryMessage(row: AuditRow): AuditEntry {
  return create(AuditEntrySchema, {
    id: row.id,
    occurredAt: timestampOfMicros(row.occurred_at),
    actor: { type: row.actor_type ?? "", id: row.actor_id ?? "", name: row.actor_name ?? "" },
    action: row.action,
    resource: { type: row.resource_type ?? "", id: row.resource_id ?? "" },
    result: RESULTS[row.result] ?? AuditResult.UNSPECIFIED,
    ip: row.ip ?? "",
    userAgent: row.user_agent ?? "",
    requestId: row.request_id ?? "",
    message: row.message ?? "",
    ...(row.details ? { details: JSON.parse(row.details) as JsonObject } : {}),
    seq: BigInt(row.seq),
    recordedAt: timestampOfMicros(row.recorded_at),
    hash: row.hash,
    prevHash: row.prev_hash,
  });
}

/** One NDJSON line: the entry as the REST paths show it (snake_case, RFC 3339 times, result by name). */
export function ndjsonLine(row: AuditRow): string {
  return (
    JSON.stringify({
      id: row.id,
      seq: Number(row.seq),
      occurred_at: isoOfMicros(row.occurred_at),
      recorded_at: isoOfMicros(row.recorded_at),
      actor: { type: row.actor_type ?? "", id: row.actor_id ?? "", name: row.actor_name ?? "" },
      action: row.action,
      resource: { type: row.resource_type ?? "", id: row.resource_id ?? "" },
      result: row.result,
      ip: row.ip ?? "",
      user_agent: row.user_agent ?? "",
      request_id: row.request_id ?? "",
      message: row.message ?? "",
      details: row.details ? (JSON.parse(row.details) as JsonObject) : {},
      prev_hash: row.prev_hash,
      hash: row.hash,
    }) + "\n"
  );
}

export const CSV_COLUMNS = [
  "id",
  "seq",
  "occurred_at",
  "recorded_at",
  "actor_type",
  "actor_id",
  "actor_name",
  "action",
  "resource_type",
  "resource_id",
  "result",
  "ip",
  "user_agent",
  "request_id",
  "message",
  "details",
  "prev_hash",
  "hash",
] as const;

export const CSV_HEADER = CSV_COLUMNS.join(",") + "\r\n";

/** One CSV record (RFC 4180: fields with a comma, quote or line break are quoted, quotes doubled). */
export function csvLine(row: AuditRow): string {
  const cells = CSV_COLUMNS.map((column) => {
    const value = row[column];
    if (value === null || value === undefined) return "";
    const text = column === "occurred_at" || column === "recorded_at" ? isoOfMicros(value as number) : String(value);
    return /[",\r\n]/.test(text) ? `"${text.replaceAll('"', '""')}"` : text;
  });
  return cells.join(",") + "\r\n";
}
