import { AuditResult } from "../../gen/persistence/v1/audit_pb.js";
import { invalidArgument, type FieldViolation } from "../core/errors.js";
import { headerOf, type NodeResponse } from "../http/node-types.js";
import type { HttpRoute } from "../platform/module.js";
import { requestIdOf } from "../rpc/context.js";
import { CSV_HEADER, csvLine, ndjsonLine } from "./audit.mapping.js";
import { queryOf, type QueryFields } from "./audit.query.js";
import type { AuditService } from "./audit.service.js";
import type { SelfAudit } from "./audit.self.js";

const RESULTS: Readonly<Record<string, number>> = { success: AuditResult.SUCCESS, failure: AuditResult.FAILURE };

/**
 * `GET /api/v1/audit/logs/export?format=ndjson|csv&<filters>`: the matching entries as one streamed
 * download, written as the client reads it (back-pressure), so its size is unbounded and the memory
 * held is one batch. The access is ExportLogs'.
 */
export function exportRoute(audit: AuditService, self: SelfAudit): HttpRoute {
  return {
    method: "GET",
    path: "/api/v1/audit/logs/export",
    rpc: "/persistence.v1.AuditService/ExportLogs",
    async handle(req, res) {
      const params = new URL(req.url ?? "/", "http://localhost").searchParams;
      const format = params.get("format") || "ndjson";
      if (format !== "ndjson" && format !== "csv") throw invalidArgument([{ field: "format", description: 'must be "ndjson" or "csv"' }]);
      const query = queryOf(queryFields(params));
      const requestId = requestIdOf(headerOf(req, "x-request-id"));
      self.read("audit.logs.export", { ip: req.socket?.remoteAddress, requestId, userAgent: headerOf(req, "user-agent") }, { query: query.text ?? "", format });
      const aborted = new AbortController();
      res.on("close", () => aborted.abort());
      const day = new Date().toISOString().slice(0, 10);
      res.writeHead(200, {
        "content-type": format === "csv" ? "text/csv; charset=utf-8" : "application/x-ndjson",
        "content-disposition": `attachment; filename="audit-logs-${day}.${format}"`,
        "cache-control": "no-store",
        "x-request-id": requestId,
      });
      if (req.method === "HEAD") return void res.end();
      const line = format === "csv" ? csvLine : ndjsonLine;
      if (format === "csv") res.write(CSV_HEADER);
      try {
        for await (const rows of audit.export(query, aborted.signal)) {
          let chunk = "";
          for (const row of rows) chunk += line(row);
          if (!res.write(chunk)) await drained(res);
          if (aborted.signal.aborted) return;
        }
      } catch (err) {
        if (aborted.signal.aborted) return;
        // Headers are gone: a cut connection is the only way left to say the download is incomplete.
        res.destroy(err as Error);
        return;
      }
      res.end();
    },
  };
}

/** Resolves when the response can take more, or is gone; leaves no listener behind. */
function drained(res: NodeResponse): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      res.off("drain", done);
      res.off("close", done);
      resolve();
    };
    res.on("drain", done);
    res.on("close", done);
  });
}

/** The filters as ExportLogsRequest names them, from a query string; bad values name their parameter. */
function queryFields(params: URLSearchParams): QueryFields {
  const violations: FieldViolation[] = [];
  const time = (name: string) => {
    const raw = params.get(name);
    if (!raw) return undefined;
    // A bare date or a time without a zone means UTC.
    const text = /^\d{4}-\d{2}-\d{2}$/.test(raw) ? `${raw}T00:00:00Z` : /[zZ]|[+-]\d{2}:?\d{2}$/.test(raw) ? raw : `${raw}Z`;
    const ms = Date.parse(text);
    if (!Number.isFinite(ms)) return void violations.push({ field: name, description: "must be an RFC 3339 time or a date" });
    return { $typeName: "google.protobuf.Timestamp" as const, seconds: BigInt(Math.floor(ms / 1000)), nanos: (ms % 1000) * 1_000_000 };
  };
  const resultName = params.get("result") ?? "";
  const result = resultName === "" ? 0 : RESULTS[resultName.toLowerCase()];
  if (result === undefined) violations.push({ field: "result", description: 'must be "success" or "failure"' });
  const from = time("from");
  const to = time("to");
  if (violations.length > 0) throw invalidArgument(violations);
  return {
    q: params.get("q") ?? "",
    action: params.get("action") ?? "",
    actorId: params.get("actor_id") ?? "",
    resourceType: params.get("resource_type") ?? "",
    resourceId: params.get("resource_id") ?? "",
    result: result ?? 0,
    ip: params.get("ip") ?? "",
    ...(from ? { from } : {}),
    ...(to ? { to } : {}),
  };
}
