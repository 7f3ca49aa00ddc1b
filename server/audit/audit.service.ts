import { randomUUID } from "node:crypto";
import type { JsonObject } from "@bufbuild/protobuf";
import type { Timestamp } from "@bufbuild/protobuf/wkt";
import type { Kysely } from "kysely";
import { invalidArgument, type FieldViolation } from "../core/errors.js";
import type { Durability, WriteBatcher } from "../core/write-batcher.js";
import { toPatches } from "../records/to-patches.js";
import { verifyChain, type ChainReport } from "./audit.chain.js";
import { ENTRY, FIELD_PATHS, type AuditRow, type AuditTables } from "./audit.fields.js";
import type { DeclaredIndex, SearchFilter } from "../backends/search/search-index.js";
import { accessRow, type AccessLog, type AccessSchema } from "./audit.access.js";
import type { AuditProjection, AuditSchema } from "./audit.projection.js";
import { searchFilters, whereFilters, type AuditQuery } from "./audit.query.js";

/** An entry as a caller gives it (the contract's AuditEntry, or another module's own record). */
export interface AuditInput {
  readonly id?: string;
  readonly occurredAt?: Timestamp;
  readonly actor?: { readonly type?: string; readonly id?: string; readonly name?: string };
  readonly action: string;
  readonly resource?: { readonly type?: string; readonly id?: string };
  /** AuditResult: 1 success, 2 failure. */
  readonly result: number;
  readonly ip?: string;
  readonly userAgent?: string;
  readonly requestId?: string;
  readonly message?: string;
  readonly details?: JsonObject;
}

export interface SearchOptions {
  /** "audit" (default): the chained record; "access": the sampled access log. */
  readonly log?: "audit" | "access";
  readonly sort?: "time" | "relevance";
  readonly pageSize?: number;
  readonly pageToken?: string;
}

export interface SearchResult {
  readonly total: number;
  readonly totalRelation: "eq" | "gte";
  readonly items: readonly AuditRow[];
  readonly nextPageToken?: string;
}

export interface StatsResult {
  readonly total: number;
  readonly byAction: readonly { value: string; count: number }[];
  readonly byResult: readonly { value: string; count: number }[];
  readonly byActor: readonly { value: string; count: number }[];
  readonly byTime: readonly { start: Date; count: number }[];
}

export interface AuditService {
  /** Validates every entry (all or nothing) and appends them through the write path; returns their ids. */
  write(entries: readonly AuditInput[], durability: Durability, signal?: AbortSignal): Promise<{ ids: string[]; durability: Durability }>;
  search(query: AuditQuery, options: SearchOptions): Promise<SearchResult>;
  /** Every matching entry, in batches, without holding more than one batch: chain order, or newest first with text. */
  export(query: AuditQuery, signal?: AbortSignal): AsyncGenerator<readonly AuditRow[]>;
  stats(query: AuditQuery, interval: string, top: number, log?: "audit" | "access"): Promise<StatsResult>;
  verify(): Promise<ChainReport>;
}

export interface AuditServiceDeps {
  readonly db: Kysely<AuditTables>;
  readonly batcher: WriteBatcher;
  readonly projection: AuditProjection;
  readonly access: Pick<AccessLog, "index" | "flush">;
  readonly maxBatchEntries: number;
}

/** Entries per export batch. */
export const EXPORT_BATCH = 500;
/** A search waits for the projection to catch up when fewer entries than this are missing from the index. */
const WAIT_FOR_PROJECTION_BELOW = 10_000;

export function createAuditService(deps: AuditServiceDeps): AuditService {
  const { db, batcher, projection } = deps;

  /** Read-your-writes for searches: committed entries reach the index first, unless the projection is far behind. */
  const fresh = async () => {
    const lag = await projection.lag();
    if (lag === 0) return;
    const run = projection.catchUp();
    if (lag < WAIT_FOR_PROJECTION_BELOW) await run;
  };

  /** The stored entries of these ids, in the ids' order (an id removed meanwhile is left out). */
  const rowsOf = async (ids: readonly string[]): Promise<AuditRow[]> => {
    if (ids.length === 0) return [];
    const rows = (await db.selectFrom("audit_logs").selectAll().where("id", "in", ids).execute()) as AuditRow[];
    const byId = new Map(rows.map((r) => [r.id, r]));
    return ids.flatMap((id) => byId.get(id) ?? []);
  };

  return {
    async write(entries, durability, signal) {
      const receivedAt = Date.now() * 1000;
      const ids = entries.map((e) => e.id || randomUUID());
      const records = entries.map((e, i) => ({
        id: ids[i],
        occurredAt: e.occurredAt,
        actorType: e.actor?.type || undefined,
        actorId: e.actor?.id || undefined,
        actorName: e.actor?.name || undefined,
        action: e.action || undefined,
        resourceType: e.resource?.type || undefined,
        resourceId: e.resource?.id || undefined,
        result: e.result,
        ip: e.ip || undefined,
        userAgent: e.userAgent || undefined,
        requestId: e.requestId || undefined,
        message: e.message || undefined,
        details: e.details,
        clearFields: [],
      }));
      const { patches, violations, lacking } = toPatches(ENTRY, records, receivedAt, deps.maxBatchEntries);
      const all: FieldViolation[] = violations.map((v) => ({ ...v, field: renamePath(v.field) }));
      for (const [index, fields] of lacking) for (const field of fields) all.push({ field: `entries[${index}].${field}`, description: "is required" });
      const seen = new Map<string, number>();
      ids.forEach((id, index) => {
        const first = seen.get(id);
        if (first !== undefined) all.push({ field: `entries[${index}].id`, description: `repeats entries[${first}].id` });
        else seen.set(id, index);
      });
      if (all.length > 0) throw invalidArgument(all);
      return { ids, durability: await batcher.accept(patches, durability, signal) };
    },

    async search(query, options) {
      if (options.log === "access") {
        await deps.access.flush();
        const page = await deps.access.index.search({
          ...(query.text ? { text: query.text } : {}),
          filters: searchFilters(query) as SearchFilter<AccessSchema>[],
          sort: options.sort ?? "time",
          pageSize: options.pageSize ?? 50,
          ...(options.pageToken ? { pageToken: options.pageToken } : {}),
        });
        return {
          total: page.total.value,
          totalRelation: page.total.relation,
          items: page.hits.map((h) => accessRow(h.document)),
          ...(page.nextPageToken ? { nextPageToken: page.nextPageToken } : {}),
        };
      }
      await fresh();
      const page = await projection.index.search({
        ...(query.text ? { text: query.text } : {}),
        filters: searchFilters(query),
        sort: options.sort ?? "time",
        pageSize: options.pageSize ?? 50,
        ...(options.pageToken ? { pageToken: options.pageToken } : {}),
      });
      return {
        total: page.total.value,
        totalRelation: page.total.relation,
        items: await rowsOf(page.hits.map((h) => h.document.id)),
        ...(page.nextPageToken ? { nextPageToken: page.nextPageToken } : {}),
      };
    },

    async *export(query, signal) {
      if (query.text) {
        await fresh();
        let pageToken: string | undefined;
        do {
          signal?.throwIfAborted();
          const page = await projection.index.search({
            text: query.text,
            filters: searchFilters(query),
            pageSize: EXPORT_BATCH,
            totalLimit: 1,
            ...(pageToken ? { pageToken } : {}),
          });
          const rows = await rowsOf(page.hits.map((h) => h.document.id));
          if (rows.length > 0) yield rows;
          pageToken = page.nextPageToken;
        } while (pageToken);
        return;
      }
      let after = 0;
      for (;;) {
        signal?.throwIfAborted();
        const rows = (await whereFilters(query, db.selectFrom("audit_logs").selectAll()).where("seq", ">", after).orderBy("seq").limit(EXPORT_BATCH).execute()) as AuditRow[];
        if (rows.length > 0) yield rows;
        if (rows.length < EXPORT_BATCH) return;
        after = Number(rows[rows.length - 1]!.seq);
      }
    },

    async stats(query, interval, top, log = "audit") {
      if (log === "audit") await fresh();
      else await deps.access.flush();
      const index = (log === "access" ? deps.access.index : projection.index) as DeclaredIndex<AuditSchema>;
      const result = await index.aggregate({
        ...(query.text ? { text: query.text } : {}),
        filters: searchFilters(query),
        terms: [
          { field: "action", size: top },
          { field: "result", size: top },
          { field: "actor_id", size: top },
        ],
        histogram: { interval },
      });
      const [byAction, byResult, byActor] = result.terms.map((t) => t.buckets);
      return { total: result.total, byAction: byAction ?? [], byResult: byResult ?? [], byActor: byActor ?? [], byTime: result.histogram ?? [] };
    },

    verify: () => verifyChain(db),
  };
}

/** `entries[2].actor_id` → `entries[2].actor.id`: violations name the fields as the request spells them. */
function renamePath(path: string): string {
  const match = /^(entries\[\d+\])\.(\w+)$/.exec(path);
  const nested = match ? FIELD_PATHS[match[2]!] : undefined;
  return nested ? `${match![1]}.${nested}` : path;
}
