import { randomUUID } from "node:crypto";
import { MethodOptions_IdempotencyLevel } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError, type Interceptor } from "@connectrpc/connect";
import { Counter, type Registry } from "prom-client";
import type { DeclaredIndex, SearchDocument, SearchIndex } from "../backends/search/search-index.js";
import { codeName } from "../core/errors.js";
import type { Logger } from "../core/logger.js";
import { clientAddressKey, principalKey, requestIdKey, restRouteKey } from "../rpc/context.js";
import { protocolOf } from "../rpc/interceptors/access-log.js";
import { observeCall } from "../rpc/interceptors/observe-call.js";
import { AuditResult } from "../../gen/persistence/v1/audit_pb.js";
import type { AuditRow } from "./audit.fields.js";
import type { AuditInput } from "./audit.service.js";

/** The access log's documents: one per sampled API call (daily partitions `access_logs-YYYY.MM.DD`). */
export const ACCESS_SCHEMA = {
  time: "occurred_at",
  text: ["message"],
  keyword: ["action", "actor_type", "actor_id", "resource_type", "resource_id", "result", "ip", "request_id", "user_agent", "code", "protocol"],
  numeric: ["duration_ms"],
} as const;
export type AccessSchema = typeof ACCESS_SCHEMA;
export const ACCESS_INDEX = "access_logs";
/** The action of every access-log entry; its resource is the RPC (`rpc`, `/persistence.v1.X/Method`). */
export const ACCESS_ACTION = "api.call";
/** The audit action of a call refused for its credentials. */
export const DENIED_ACTION = "access.denied";

/**
 * RPCs of other modules whose calls are significant actions, recorded in the audit log whatever
 * their outcome: the audited action, the resource type and the request field naming the resource,
 * and the request fields kept as details. Observed here, around the call, so that no module writes
 * the audit tables and the start order of the modules does not matter.
 */
const SIGNIFICANT: Readonly<Record<string, { action: string; resourceType: string; idField?: string; detailFields: readonly string[] }>> = {
  "/persistence.v1.TranslationService/DeleteSession": { action: "session.delete", resourceType: "session", idField: "sessionId", detailFields: ["soft"] },
  "/persistence.v1.TranslationService/CleanupSessions": { action: "session.cleanup", resourceType: "session", detailFields: ["completedDays", "failedDays", "cancelledDays", "dryRun"] },
  "/persistence.v1.TranslationService/UpdateSessionStatus": { action: "session.status", resourceType: "session", idField: "sessionId", detailFields: ["status", "reason"] },
  "/persistence.v1.StorageService/DeleteFile": { action: "file.delete", resourceType: "file", idField: "fileId", detailFields: [] },
  "/persistence.v1.UserService/DeleteUser": { action: "user.delete", resourceType: "user", idField: "userId", detailFields: [] },
};

export interface AccessSampling {
  /** Fraction of calls with side effects logged, 0-1. */
  readonly writes: number;
  /** Fraction of read-only calls logged, 0-1. */
  readonly reads: number;
}

/** Documents held for the index at most; beyond, new ones are dropped and counted. */
const MAX_QUEUED = 10_000;
const BATCH = 500;
const FLUSH_MS = 1000;

export interface AccessLog {
  readonly index: DeclaredIndex<AccessSchema>;
  /** Records each sampled call in the access log, and each call refused for its credentials in the audit log. */
  readonly interceptor: Interceptor;
  /** Resolves once what is queued now is in the index (a search of the access log reads its own calls). */
  flush(): Promise<void>;
  /** Writes what is queued. */
  stop(): Promise<void>;
}

/**
 * The service's record of its own API calls. Sampled (by default every call with side effects and
 * 10% of reads), written in batches straight to the search role: a log of calls, not a record
 * anyone was promised, so when the search backend cannot keep up the newest documents beyond
 * MAX_QUEUED are dropped and counted (`persistence_access_log_dropped_total`). Calls refused for
 * their credentials (UNAUTHENTICATED, PERMISSION_DENIED) and the significant actions of other
 * modules (SIGNIFICANT) always go to the audit log as well, chained.
 */
export async function createAccessLog(options: {
  readonly search: SearchIndex;
  readonly sampling: AccessSampling;
  readonly recordAudit: (entries: AuditInput[]) => Promise<unknown>;
  readonly logger: Logger;
  readonly registry: Registry;
}): Promise<AccessLog> {
  const { sampling, logger } = options;
  const index = await options.search.declareIndex(ACCESS_INDEX, ACCESS_SCHEMA);
  const dropped = new Counter({ name: "persistence_access_log_dropped_total", help: "Access-log documents dropped because the search backend fell behind.", registers: [options.registry] });
  let queue: SearchDocument<AccessSchema>[] = [];
  let writing: Promise<void> | undefined;
  const drain = (): Promise<void> => {
    writing ??= (async () => {
      while (queue.length > 0) {
        const batch = queue.slice(0, BATCH);
        await index.index(batch);
        queue = queue.slice(batch.length);
      }
    })()
      .catch((err: unknown) => logger.warn({ err: String((err as Error).message ?? err), queued: queue.length }, "access log not written yet; retrying"))
      .finally(() => (writing = undefined));
    return writing;
  };
  const timer = setInterval(() => void drain(), FLUSH_MS);
  timer.unref();

  const interceptor: Interceptor = (next) => (req) => {
    const started = Date.now();
    const t0 = performance.now();
    const readOnly = req.method.idempotency === MethodOptions_IdempotencyLevel.NO_SIDE_EFFECTS;
    const sampled = Math.random() < (readOnly ? sampling.reads : sampling.writes);
    return observeCall(next, req, {
      end(err) {
        const code: number = err === undefined ? 0 : ConnectError.from(err).code;
        const denied = code === Code.Unauthenticated || code === Code.PermissionDenied;
        const rpc = `/${req.service.typeName}/${req.method.name}`;
        const significant = SIGNIFICANT[rpc];
        if (!sampled && !denied && !significant) return;
        const caller = req.contextValues.get(principalKey)?.name;
        const ip = req.contextValues.get(clientAddressKey);
        const requestId = req.contextValues.get(requestIdKey);
        const userAgent = req.header.get("user-agent")?.slice(0, 255);
        const name = code === 0 ? "ok" : codeName(code);
        const durationMs = Math.round((performance.now() - t0) * 1000) / 1000;
        const route = req.contextValues.get(restRouteKey);
        const logged = sampled || denied;
        if (logged && queue.length >= MAX_QUEUED) dropped.inc();
        else if (logged) {
          queue.push({
            id: randomUUID(),
            occurred_at: new Date(started),
            message: `${route ?? rpc} ${name} ${durationMs} ms`,
            action: ACCESS_ACTION,
            actor_type: caller ? "api_key" : "anonymous",
            actor_id: caller ?? null,
            resource_type: "rpc",
            resource_id: rpc,
            result: code === 0 ? "success" : "failure",
            ip: ip ?? null,
            request_id: requestId || null,
            user_agent: userAgent ?? null,
            code: name,
            protocol: route === undefined ? protocolOf(req.header.get("content-type")) : "rest",
            duration_ms: durationMs,
          });
          if (queue.length >= BATCH) void drain();
        }
        if (significant && !denied) {
          const message = req.stream ? {} : (req.message as unknown as Record<string, unknown>);
          const resourceId = significant.idField ? String(message[significant.idField] ?? "").slice(0, 255) : "";
          const details: Record<string, string | number | boolean | null> = { code: name };
          for (const field of significant.detailFields) {
            const value = message[field];
            if (typeof value === "string" || typeof value === "number" || typeof value === "boolean") details[snake(field)] = typeof value === "string" ? value.slice(0, 1000) : value;
          }
          options
            .recordAudit([
              {
                action: significant.action,
                result: code === 0 ? AuditResult.SUCCESS : AuditResult.FAILURE,
                actor: caller ? { type: "api_key", id: caller, name: caller } : { type: "anonymous" },
                resource: { type: significant.resourceType, ...(resourceId ? { id: resourceId } : {}) },
                ...(ip ? { ip } : {}),
                ...(userAgent ? { userAgent } : {}),
                ...(requestId ? { requestId } : {}),
                message: `${significant.action}${resourceId ? ` ${resourceId}` : ""}: ${name}`,
                details,
              },
            ])
            .catch((e: unknown) => logger.warn({ err: String((e as Error).message ?? e), action: significant.action }, "significant action not audited"));
        }
        if (denied) {
          options
            .recordAudit([
              {
                action: DENIED_ACTION,
                result: AuditResult.FAILURE,
                actor: caller ? { type: "api_key", id: caller, name: caller } : { type: "anonymous" },
                resource: { type: "rpc", id: rpc },
                ...(ip ? { ip } : {}),
                ...(userAgent ? { userAgent } : {}),
                ...(requestId ? { requestId } : {}),
                // The refusal names the key (when one was presented); the caller is not known otherwise.
                message: `${rpc} refused (${name}): ${ConnectError.from(err).rawMessage}`.slice(0, 4000),
                details: { code: name },
              },
            ])
            .catch((e: unknown) => logger.warn({ err: String((e as Error).message ?? e) }, "refused call not audited"));
        }
      },
    });
  };

  const flush = async () => {
    await writing;
    await drain();
  };
  return {
    index,
    interceptor,
    flush,
    async stop() {
      clearInterval(timer);
      await writing;
      await drain();
    },
  };
}

/** `dryRun` → `dry_run`. */
function snake(name: string): string {
  return name.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);
}

/** An access-log document as a stored row (no chain fields: the access log is not chained; `seq` is 0). */
export function accessRow(doc: SearchDocument<AccessSchema>): AuditRow {
  const micros = doc.occurred_at.getTime() * 1000;
  return {
    id: doc.id,
    seq: 0,
    occurred_at: micros,
    recorded_at: micros,
    actor_type: doc.actor_type ?? null,
    actor_id: doc.actor_id ?? null,
    actor_name: null,
    action: doc.action ?? ACCESS_ACTION,
    resource_type: doc.resource_type ?? null,
    resource_id: doc.resource_id ?? null,
    result: doc.result ?? "success",
    ip: doc.ip ?? null,
    user_agent: doc.user_agent ?? null,
    request_id: doc.request_id ?? null,
    message: doc.message ?? null,
    details: JSON.stringify({ code: doc.code ?? "", protocol: doc.protocol ?? "", duration_ms: doc.duration_ms ?? null }),
    prev_hash: "",
    hash: "",
  };
}
