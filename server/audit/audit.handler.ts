import { timestampNow } from "@bufbuild/protobuf/wkt";
import type { HandlerContext, ServiceImpl } from "@connectrpc/connect";
import type { AuditService as AuditServiceDesc } from "../../gen/persistence/v1/audit_pb.js";
import { invalidArgument } from "../core/errors.js";
import type { Durability } from "../core/write-batcher.js";
import { durabilityEnum, requestedDurability } from "../records/durability.js";
import { clientAddressKey, principalKey, requestIdKey } from "../rpc/context.js";
import { entryMessage, timestampOfMicros } from "./audit.mapping.js";
import { queryOf } from "./audit.query.js";
import type { AuditService } from "./audit.service.js";
import type { SelfAudit } from "./audit.self.js";

/** Time buckets of GetAuditStats: `<n>m`, `<n>h` or `<n>d`. */
const INTERVAL = /^[1-9]\d{0,3}[mhd]$/;

/** persistence.v1.AuditService: maps the contract onto the audit service. */
export function createAuditHandler(audit: AuditService, self: SelfAudit, defaultDurability: Durability): ServiceImpl<typeof AuditServiceDesc> {
  return {
    async writeLogs(req, ctx) {
      const { ids, durability } = await audit.write(req.entries, requestedDurability(req.durability, defaultDurability), ctx.signal);
      return { status: "accepted", count: ids.length, durability: durabilityEnum(durability), timestamp: timestampNow(), ids };
    },
    async searchLogs(req, ctx) {
      const query = queryOf(req);
      if (req.pageSize < 0 || req.pageSize > 1000) throw invalidArgument([{ field: "page_size", description: "must be 1 to 1000 (0: the default 50)" }]);
      if (req.sort !== "" && req.sort !== "time" && req.sort !== "relevance") throw invalidArgument([{ field: "sort", description: 'must be "time" or "relevance"' }]);
      if (req.sort === "relevance" && !query.text) throw invalidArgument([{ field: "sort", description: "relevance needs q" }]);
      const result = await audit.search(query, {
        log: logOf(req.log),
        sort: req.sort === "relevance" ? "relevance" : "time",
        pageSize: req.pageSize || 50,
        ...(req.pageToken ? { pageToken: req.pageToken } : {}),
      });
      self.read("audit.logs.search", callerOf(ctx), { query: req.q, results: result.items.length });
      return { total: BigInt(result.total), totalRelation: result.totalRelation, items: result.items.map(entryMessage), nextPageToken: result.nextPageToken ?? "" };
    },
    async *exportLogs(req, ctx) {
      const query = queryOf(req);
      self.read("audit.logs.export", callerOf(ctx), { query: req.q, format: "grpc" });
      for await (const rows of audit.export(query, ctx.signal)) yield { entries: rows.map(entryMessage) };
    },
    async getAuditStats(req, ctx) {
      const query = queryOf(req);
      const interval = req.interval || "1h";
      if (!INTERVAL.test(interval)) throw invalidArgument([{ field: "interval", description: 'must be <n>m, <n>h or <n>d, e.g. "15m", "1h", "1d"' }]);
      if (req.top < 0 || req.top > 1000) throw invalidArgument([{ field: "top", description: "must be 1 to 1000 (0: the default 10)" }]);
      const stats = await audit.stats(query, interval, req.top || 10, logOf(req.log));
      self.read("audit.stats.read", callerOf(ctx), {});
      const counts = (list: readonly { value: string; count: number }[]) => list.map(({ value, count }) => ({ value, count: BigInt(count) }));
      return {
        total: BigInt(stats.total),
        byAction: counts(stats.byAction),
        byResult: counts(stats.byResult),
        byActor: counts(stats.byActor),
        byTime: stats.byTime.map(({ start, count }) => ({ start: timestampOfMicros(start.getTime() * 1000), count: BigInt(count) })),
        interval,
      };
    },
    async verifyAuditChain(_req, ctx) {
      const report = await audit.verify();
      self.read("audit.chain.verify", callerOf(ctx), { ok: report.ok, checked: report.checked });
      return {
        ok: report.ok,
        checked: BigInt(report.checked),
        headSeq: BigInt(report.headSeq),
        anchorSeq: BigInt(report.anchorSeq),
        ...(report.firstBroken ? { firstBroken: { ...report.firstBroken, seq: BigInt(report.firstBroken.seq) } } : {}),
      };
    },
  };
}

/** Which log a read is of: "audit" (default) or "access". */
function logOf(log: string): "audit" | "access" {
  if (log === "" || log === "audit") return "audit";
  if (log === "access") return "access";
  throw invalidArgument([{ field: "log", description: 'must be "audit" or "access"' }]);
}

/** Who is calling, as the platform saw it. */
export interface Caller {
  readonly keyName?: string;
  readonly ip?: string;
  readonly requestId?: string;
  readonly userAgent?: string;
}

function callerOf(ctx: HandlerContext): Caller {
  return {
    keyName: ctx.values.get(principalKey)?.name,
    ip: ctx.values.get(clientAddressKey),
    requestId: ctx.values.get(requestIdKey) || undefined,
    userAgent: ctx.requestHeader.get("user-agent") ?? undefined,
  };
}
