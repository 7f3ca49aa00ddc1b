import { Client, errors, type API } from "@opensearch-project/opensearch";
import { failedPrecondition, unavailable } from "../../core/errors.js";
import { createDeclaredIndex, partitionDay } from "./declared-index.js";
import type { SearchIndex } from "./search-index.js";
import {
  checkIndexName,
  dayOf,
  dayStart,
  normalizeSchema,
  schemaDefinition,
  type AggregatePlan,
  type EngineHit,
  type Filter,
  type IndexEngine,
  type MatchPlan,
  type Schema,
  type SearchPlan,
  type StoredDocument,
} from "./search-plan.js";
import { tokenize } from "./text-terms.js";

/**
 * Request bodies are plain JSON here: the client's generated types miss parts of the DSL (a terms
 * aggregation's `field`, for one), so they are cast once where sent.
 */
type Json = Record<string, unknown>;
type Query = Json;

export interface OpenSearchOptions {
  /** `http(s)://[user:password@]host:port` (`PERSISTENCE_OPENSEARCH_URL`); a private CA goes in NODE_EXTRA_CA_CERTS. */
  readonly url: string;
  /** Put before every index and template name (default none), so that deployments can share a cluster. */
  readonly prefix?: string;
  /** How long one request may take, in ms (default 10,000). */
  readonly requestTimeoutMs?: number;
}

/** The field holding every text field's tokens (text-terms.ts), one array element per field. */
const TOKENS = "search_tokens";
/** Documents or bytes per bulk request, whichever comes first. */
const BULK_DOCUMENTS = 1000;
const BULK_BYTES = 5 << 20;
/** Indices named per delete request, to keep URLs short. */
const DELETE_NAMES = 50;

/**
 * OpenSearch through `@opensearch-project/opensearch`: one index per UTC day
 * (`<prefix><index>-YYYY.MM.DD`, SPEC §6) created from an index template with strict mappings on
 * first write, searched through the `<index>-*` pattern with `search_after`, dropped whole for
 * retention. The text is tokenized here, as for MariaDB (whitespace analyzer over
 * `search_tokens`), so both match alike without analysis plugins; BM25 ranks.
 * Nothing is sent until the first call; `ping()` says whether the cluster answers.
 */
export function createOpenSearchIndex(options: OpenSearchOptions): SearchIndex {
  const prefix = options.prefix ?? "";
  if (!/^([a-z0-9][a-z0-9_.-]*)?$/.test(prefix)) throw new Error(`invalid OpenSearch index prefix ${JSON.stringify(prefix)}`);
  const client = new Client({ node: options.url, requestTimeout: options.requestTimeoutMs ?? 10_000, maxRetries: 2 });
  return {
    name: "search",
    kind: "opensearch",
    ping: () => call(() => client.ping()).then(() => undefined),
    close: () => client.close(),
    async declareIndex(name, declared) {
      checkIndexName(name);
      const schema = normalizeSchema(declared);
      const definition = schemaDefinition(schema);
      const base = `${prefix}${name}`;
      const existing = await call(() => client.indices.getIndexTemplate({ name: base }, { ignore: [404] }));
      const stored = (existing.body as { index_templates?: { index_template?: { _meta?: { schema?: unknown } } }[] }).index_templates?.[0]
        ?.index_template?._meta?.schema;
      if (stored !== undefined && stored !== definition) {
        throw failedPrecondition(`search index ${name} exists with another schema`, {
          type: "SEARCH_SCHEMA",
          subject: `search index ${name}`,
          description: `declared ${definition}, stored ${String(stored)}`,
        });
      }
      // Put again even when present, so that days created from now on get this release's mappings.
      await call(() => client.indices.putIndexTemplate({ name: base, body: indexTemplate(base, schema, definition) as API.Indices_PutIndexTemplate_RequestBody }));
      return createDeclaredIndex(name, declared, schema, openSearchEngine(client, base, schema));
    },
  };
}

/** The template every daily index of `base` is created from. */
export function indexTemplate(base: string, schema: Schema, definition: string): Json {
  const properties: Record<string, Json> = {
    id: { type: "keyword" },
    [schema.time]: { type: "date", format: "epoch_millis" },
    [TOKENS]: { type: "text", analyzer: "whitespace" },
  };
  for (const k of schema.keyword) properties[k] = { type: "keyword" };
  for (const n of schema.numeric) properties[n] = { type: "double" };
  // Kept for the hits; searched through their tokens.
  for (const t of schema.text) properties[t] = { type: "text", index: false };
  return {
    index_patterns: [`${base}-*`],
    priority: 100,
    _meta: { schema: definition, owner: "persistence-service" },
    template: {
      settings: { number_of_shards: 1 },
      mappings: { dynamic: "strict", properties },
    },
  };
}

/** A stored document as an OpenSearch source. */
export function sourceOf(schema: Schema, doc: StoredDocument): Json {
  const source: Json = { id: doc.id, [schema.time]: doc.time };
  for (const [field, value] of Object.entries(doc.values)) if (value !== null) source[field] = value;
  source[TOKENS] = schema.text.map((t) => {
    const value = doc.values[t];
    return typeof value === "string" ? tokenize(value).join(" ") : "";
  });
  return source;
}

export function matchQuery(plan: MatchPlan): Query {
  const filter = plan.filters.map(filterQuery);
  if (plan.terms === undefined) return filter.length > 0 ? { bool: { filter } } : { match_all: {} };
  const terms = plan.terms.map((t): Query =>
    t.singleCjk
      ? { wildcard: { [TOKENS]: { value: `*${t.tokens[0]!.replace(/[*?\\]/g, "\\$&")}*` } } }
      : { match_phrase: { [TOKENS]: { query: t.tokens.join(" ") } } },
  );
  return plan.operator === "and"
    ? { bool: { must: terms, filter } }
    : { bool: { should: terms, minimum_should_match: 1, filter } };
}

function filterQuery(filter: Filter): Query {
  switch (filter.kind) {
    case "term":
      return filter.values.length === 1 ? { term: { [filter.field]: { value: filter.values[0]! } } } : { terms: { [filter.field]: [...filter.values] } };
    case "prefix":
      return { prefix: { [filter.field]: { value: filter.prefix } } };
    case "range": {
      const { gte, gt, lte, lt } = filter;
      return { range: { [filter.field]: { ...(gte !== undefined ? { gte } : {}), ...(gt !== undefined ? { gt } : {}), ...(lte !== undefined ? { lte } : {}), ...(lt !== undefined ? { lt } : {}) } } };
    }
  }
}

export function searchBody(schema: Schema, plan: SearchPlan, limit: number): Json {
  const byTime = [{ [schema.time]: { order: "desc" as const } }, { id: { order: "desc" as const } }];
  return {
    query: matchQuery(plan),
    _source: { excludes: [TOKENS] },
    sort: plan.sort === "relevance" ? [{ _score: { order: "desc" } }, ...byTime] : byTime,
    size: limit,
    // One more than the limit, to tell "exactly the limit" from "more".
    track_total_hits: plan.totalLimit + 1,
    ...(plan.after ? { search_after: [...plan.after] } : {}),
  };
}

export function aggregateBody(schema: Schema, plan: AggregatePlan): Json {
  const aggs: Record<string, Json> = {};
  plan.counts.forEach((c, i) => {
    // Several daily indices are several shards: ask each for more values so the top ones are exact in practice.
    aggs[`terms_${i}`] = {
      terms: { field: c.field, size: c.size, shard_size: Math.min(10_000, Math.max(c.size * 10, 500)), order: [{ _count: "desc" }, { _key: "asc" }] },
    };
  });
  if (plan.intervalMs) {
    aggs.histogram = { date_histogram: { field: schema.time, fixed_interval: `${plan.intervalMs / 60_000}m`, min_doc_count: 1 } };
  }
  return { size: 0, query: matchQuery(plan), track_total_hits: true, aggs };
}

interface SearchResponseBody {
  hits: { total?: { value: number } | number; hits: { _source?: Record<string, unknown>; _score?: number | null; sort?: (string | number)[] }[] };
  aggregations?: Record<string, { buckets: { key: string | number; doc_count: number }[]; sum_other_doc_count?: number }>;
}

function openSearchEngine(client: Client, base: string, schema: Schema): IndexEngine {
  const pattern = `${base}-*`;
  const daily = (time: number) => `${base}-${dayOf(time).replaceAll("-", ".")}`;
  const search = async (body: Json) =>
    (await call(() => client.search({ index: pattern, ignore_unavailable: true, allow_no_indices: true, body: body as API.Search_RequestBody }))).body as unknown as SearchResponseBody;
  const totalOf = (r: SearchResponseBody) => (typeof r.hits.total === "number" ? r.hits.total : (r.hits.total?.value ?? 0));
  const indices = async (): Promise<{ index: string; day: string }[]> => {
    const { body } = await call(() => client.cat.indices({ index: pattern, format: "json", h: ["index"], expand_wildcards: "all" }, { ignore: [404] }));
    return (Array.isArray(body) ? (body as { index?: string }[]) : [])
      .flatMap((r) => {
        const day = r.index ? partitionDay(base, r.index) : undefined;
        return day ? [{ index: r.index!, day }] : [];
      })
      .sort((a, b) => a.day.localeCompare(b.day));
  };
  const dropBefore = async (start: number) => {
    const old = (await indices()).filter((i) => Date.parse(i.day) < start);
    let documents = 0;
    for (let i = 0; i < old.length; i += DELETE_NAMES) {
      const names = old.slice(i, i + DELETE_NAMES).map((o) => o.index);
      const counted = await call(() => client.count({ index: names.join(","), ignore_unavailable: true }));
      documents += Number((counted.body as { count?: number }).count ?? 0);
      await call(() => client.indices.delete({ index: names.join(","), ignore_unavailable: true }));
    }
    return { days: old.map((o) => o.day), documents };
  };
  return {
    async index(documents) {
      let body: Json[] = [];
      let bytes = 0;
      const send = async () => {
        if (body.length === 0) return;
        const { body: result } = await call(() => client.bulk({ body: body as API.Bulk_RequestBody, refresh: "wait_for" }));
        body = [];
        bytes = 0;
        checkBulk(result as BulkResult);
      };
      for (const doc of documents) {
        const source = sourceOf(schema, doc);
        body.push({ index: { _index: daily(doc.time), _id: doc.id } }, source);
        bytes += JSON.stringify(source).length;
        if (body.length >= BULK_DOCUMENTS * 2 || bytes >= BULK_BYTES) await send();
      }
      await send();
    },
    async search(plan, limit) {
      const response = await search(searchBody(schema, plan, limit));
      const hits = response.hits.hits.map((hit): EngineHit => {
        const sortKey = hit.sort ?? [];
        return { document: documentOf(schema, hit._source ?? {}), score: Number(plan.sort === "relevance" ? sortKey[0] : (hit._score ?? 0)), sortKey };
      });
      return { hits, total: totalOf(response) };
    },
    async aggregate(plan) {
      const response = await search(aggregateBody(schema, plan));
      const aggs = response.aggregations ?? {};
      return {
        total: totalOf(response),
        counts: plan.counts.map((c, i) => {
          const agg = aggs[`terms_${i}`];
          return {
            field: c.field,
            buckets: (agg?.buckets ?? []).map((b) => ({ value: String(b.key), count: b.doc_count })),
            otherCount: agg?.sum_other_doc_count ?? 0,
          };
        }),
        ...(plan.intervalMs ? { histogram: (aggs.histogram?.buckets ?? []).map((b) => ({ start: Number(b.key), count: b.doc_count })) } : {}),
      };
    },
    async days() {
      const response = await search({ size: 0, track_total_hits: false, aggs: { days: { terms: { field: "_index", size: 10_000 } } } });
      return (response.aggregations?.days?.buckets ?? [])
        .flatMap((b) => {
          const day = partitionDay(base, String(b.key));
          return day && b.doc_count > 0 ? [{ day, documents: b.doc_count }] : [];
        })
        .sort((a, b) => a.day.localeCompare(b.day));
    },
    async dropDaysBefore(start) {
      return (await dropBefore(start)).days;
    },
    async deleteBefore(time) {
      const { documents } = await dropBefore(dayStart(time));
      const { body } = await call(() =>
        client.deleteByQuery({
          index: daily(time),
          ignore_unavailable: true,
          allow_no_indices: true,
          conflicts: "proceed",
          refresh: true,
          body: { query: { range: { [schema.time]: { lt: time } } } },
        }),
      );
      return documents + Number((body as { deleted?: number }).deleted ?? 0);
    },
    async drop() {
      const names = (await indices()).map((i) => i.index);
      for (let i = 0; i < names.length; i += DELETE_NAMES) {
        await call(() => client.indices.delete({ index: names.slice(i, i + DELETE_NAMES).join(","), ignore_unavailable: true }));
      }
      await call(() => client.indices.deleteIndexTemplate({ name: base }, { ignore: [404] }));
    },
  };
}

function documentOf(schema: Schema, source: Record<string, unknown>): StoredDocument {
  const values: Record<string, string | number | null> = {};
  for (const field of [...schema.text, ...schema.keyword]) values[field] = typeof source[field] === "string" ? (source[field] as string) : null;
  for (const field of schema.numeric) values[field] = typeof source[field] === "number" ? (source[field] as number) : null;
  return { id: String(source.id), time: Number(source[schema.time]), values };
}

interface BulkResult {
  errors?: boolean;
  items?: Record<string, { status?: number; error?: { type?: string; reason?: string } }>[];
}

/** A bulk request answers 200 even when some documents failed: each item says. */
function checkBulk(result: BulkResult): void {
  if (!result.errors) return;
  const failed = (result.items ?? []).map((item) => Object.values(item)[0]).filter((i) => i?.error);
  if (failed.some((i) => i?.status === 429)) throw unavailable("the search cluster is overloaded (bulk rejected)", 1000);
  const first = failed[0]?.error;
  throw new Error(`OpenSearch refused ${failed.length} document(s): ${first?.type ?? "error"}: ${first?.reason ?? "unknown"}`);
}

/** Runs a request; an unreachable or overloaded cluster is UNAVAILABLE with a retry delay. */
async function call<T>(request: () => Promise<T>): Promise<T> {
  try {
    return await request();
  } catch (err) {
    if (err instanceof errors.ConnectionError || err instanceof errors.TimeoutError || err instanceof errors.NoLivingConnectionsError) {
      throw unavailable(`the search cluster cannot be reached: ${err.message}`, 1000);
    }
    if (err instanceof errors.ResponseError && (err.statusCode === 429 || err.statusCode === 503)) {
      throw unavailable(`the search cluster is overloaded (HTTP ${err.statusCode})`, 1000);
    }
    throw err;
  }
}
