import { invalidArgument } from "../../core/errors.js";
import type { AggregateResult, DeclaredIndex, IndexSchema, SearchDocument, SearchHit, TermCounts } from "./search-index.js";
import {
  dayStart,
  normalizeDocuments,
  pageToken,
  planAggregate,
  planSearch,
  type IndexEngine,
  type Schema,
  type StoredDocument,
} from "./search-plan.js";

/**
 * The handle every implementation returns: it checks each request, turns it into a plan for the
 * implementation's engine, and maps the answers back (times to Dates, page tokens, partition names).
 */
export function createDeclaredIndex<S extends IndexSchema>(name: string, declared: S, schema: Schema, engine: IndexEngine): DeclaredIndex<S> {
  const toDocument = (stored: StoredDocument): SearchDocument<S> => {
    const doc: Record<string, unknown> = { id: stored.id, [schema.time]: new Date(stored.time) };
    for (const [field, value] of Object.entries(stored.values)) if (value !== null) doc[field] = value;
    return doc as SearchDocument<S>;
  };
  return {
    name,
    schema: declared,
    async index(documents) {
      const stored = normalizeDocuments(schema, documents);
      if (stored.length > 0) await engine.index(stored);
    },
    async search(request) {
      const plan = planSearch(schema, name, request);
      if (plan.terms?.length === 0) return { hits: [], total: { value: 0, relation: "eq" } };
      const { hits, total } = await engine.search(plan, plan.pageSize + 1);
      const page = hits.slice(0, plan.pageSize);
      const last = page[page.length - 1];
      return {
        hits: page.map((h): SearchHit<S> => ({ document: toDocument(h.document), ...(plan.sort === "relevance" ? { score: h.score ?? 0 } : {}) })),
        total: total > plan.totalLimit ? { value: plan.totalLimit, relation: "gte" } : { value: total, relation: "eq" },
        ...(hits.length > plan.pageSize && last ? { nextPageToken: pageToken(last.sortKey, plan.fingerprint) } : {}),
      };
    },
    async aggregate(request): Promise<AggregateResult<S>> {
      const plan = planAggregate(schema, request);
      const result = plan.terms?.length === 0
        ? { total: 0, counts: plan.counts.map((c) => ({ field: c.field, buckets: [], otherCount: 0 })), ...(plan.intervalMs ? { histogram: [] } : {}) }
        : await engine.aggregate(plan);
      return {
        total: result.total,
        // The plan admits only the schema's keyword fields.
        terms: result.counts as readonly TermCounts<S>[],
        ...(result.histogram ? { histogram: result.histogram.map((b) => ({ start: new Date(b.start), count: b.count })) } : {}),
      };
    },
    async partitions() {
      return (await engine.days()).map((d) => ({ name: partitionName(name, d.day), day: d.day, documents: d.documents }));
    },
    async dropPartitionsBefore(day) {
      const dropped = await engine.dropDaysBefore(dayStart(checkDate(day, "day")));
      return dropped.map((d) => partitionName(name, d));
    },
    async deleteBefore(time) {
      return engine.deleteBefore(checkDate(time, "time"));
    },
    drop: () => engine.drop(),
  };
}

/** `<index>-YYYY.MM.DD`, the daily index name of SPEC §6 (`audit_logs-2026.12.01`). */
export function partitionName(index: string, day: string): string {
  return `${index}-${day.replaceAll("-", ".")}`;
}

/** The UTC day named by a partition, or undefined when the name is not one of `index`'s partitions. */
export function partitionDay(index: string, partition: string): string | undefined {
  const m = /^(\d{4})\.(\d{2})\.(\d{2})$/.exec(partition.startsWith(`${index}-`) ? partition.slice(index.length + 1) : "");
  return m ? `${m[1]}-${m[2]}-${m[3]}` : undefined;
}

function checkDate(value: Date, field: string): number {
  const ms = value instanceof Date ? value.getTime() : NaN;
  if (Number.isNaN(ms)) throw invalidArgument([{ field, description: "must be a valid Date" }]);
  return ms;
}
