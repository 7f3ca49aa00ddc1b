import type { Timestamp } from "@bufbuild/protobuf/wkt";
import { sql, type SelectQueryBuilder } from "kysely";
import type { SearchFilter } from "../backends/search/search-index.js";
import { invalidArgument, type FieldViolation } from "../core/errors.js";
import { TIME_PROBLEM, timestampMicros } from "../records/fields.js";
import { AUDIT_RESULT_NAMES, type AuditTables } from "./audit.fields.js";
import type { AuditSchema } from "./audit.projection.js";

/** What a search, an export or the stats match: free text and filters, all optional. */
export interface AuditQuery {
  readonly text?: string;
  /** Actions starting with this. */
  readonly action?: string;
  readonly actorId?: string;
  readonly resourceType?: string;
  readonly resourceId?: string;
  /** "success" or "failure". */
  readonly result?: string;
  readonly ip?: string;
  /** occurred_at >= from, µs. */
  readonly from?: number;
  /** occurred_at < to, µs. */
  readonly to?: number;
}

/** The filters of a request message (SearchLogs, ExportLogs, GetAuditStats share their names). */
export interface QueryFields {
  readonly q: string;
  readonly action: string;
  readonly actorId: string;
  readonly resourceType: string;
  readonly resourceId: string;
  readonly result: number;
  readonly ip: string;
  readonly from?: Timestamp;
  readonly to?: Timestamp;
}

/** The query a request asks for; INVALID_ARGUMENT names each bad field. */
export function queryOf(req: QueryFields): AuditQuery {
  const violations: FieldViolation[] = [];
  const time = (field: string, ts: Timestamp | undefined) => {
    if (!ts) return undefined;
    const micros = timestampMicros(ts);
    if (micros === undefined) violations.push({ field, description: TIME_PROBLEM });
    return micros;
  };
  let result: string | undefined;
  if (req.result !== 0) {
    result = AUDIT_RESULT_NAMES[req.result];
    if (!result) violations.push({ field: "result", description: `unknown result ${req.result}` });
  }
  const from = time("from", req.from);
  const to = time("to", req.to);
  if (from !== undefined && to !== undefined && from > to) violations.push({ field: "from", description: "must not be after to" });
  for (const [field, value, max] of [
    ["action", req.action, 128],
    ["actor_id", req.actorId, 128],
    ["resource_type", req.resourceType, 64],
    ["resource_id", req.resourceId, 255],
    ["ip", req.ip, 64],
  ] as const) {
    if ([...value].length > max) violations.push({ field, description: `must be at most ${max} characters` });
  }
  if (req.q.length > 1000) violations.push({ field: "q", description: "must be at most 1000 characters" });
  if (violations.length > 0) throw invalidArgument(violations);
  const given = (s: string) => (s === "" ? undefined : s);
  return {
    text: req.q.trim() === "" ? undefined : req.q,
    action: given(req.action),
    actorId: given(req.actorId),
    resourceType: given(req.resourceType),
    resourceId: given(req.resourceId),
    result,
    ip: given(req.ip),
    from,
    to,
  };
}

/** The query's filters as the search role takes them. */
export function searchFilters(query: AuditQuery): SearchFilter<AuditSchema>[] {
  const filters: SearchFilter<AuditSchema>[] = [];
  if (query.action) filters.push({ field: "action", prefix: query.action });
  const terms = [
    ["actor_id", query.actorId],
    ["resource_type", query.resourceType],
    ["resource_id", query.resourceId],
    ["result", query.result],
    ["ip", query.ip],
  ] as const;
  for (const [field, term] of terms) if (term !== undefined) filters.push({ field, term });
  if (query.from !== undefined || query.to !== undefined) {
    filters.push({
      field: "occurred_at",
      ...(query.from !== undefined ? { gte: new Date(query.from / 1000) } : {}),
      ...(query.to !== undefined ? { lt: new Date(query.to / 1000) } : {}),
    });
  }
  return filters;
}

/** The query's filters (not its text) on a select from `audit_logs`. */
export function whereFilters<O>(
  query: AuditQuery,
  select: SelectQueryBuilder<AuditTables, "audit_logs", O>,
): SelectQueryBuilder<AuditTables, "audit_logs", O> {
  let q = select;
  if (query.action) q = q.where(sql<string>`substr(action, 1, ${[...query.action].length})`, "=", query.action);
  if (query.actorId !== undefined) q = q.where("actor_id", "=", query.actorId);
  if (query.resourceType !== undefined) q = q.where("resource_type", "=", query.resourceType);
  if (query.resourceId !== undefined) q = q.where("resource_id", "=", query.resourceId);
  if (query.result !== undefined) q = q.where("result", "=", query.result);
  if (query.ip !== undefined) q = q.where("ip", "=", query.ip);
  if (query.from !== undefined) q = q.where("occurred_at", ">=", query.from);
  if (query.to !== undefined) q = q.where("occurred_at", "<", query.to);
  return q;
}
