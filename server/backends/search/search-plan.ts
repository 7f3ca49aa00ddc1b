import { createHash } from "node:crypto";
import { invalidArgument, type FieldViolation } from "../../core/errors.js";
import type { AggregateRequest, IndexSchema, SearchRequest } from "./search-index.js";
import { MAX_TERMS, parseTerms, type TextTerm } from "./text-terms.js";

/**
 * Requests checked and reduced to plain values, so that an implementation only stores and queries:
 * every field it sees is declared, every value has the declared type, times are epoch milliseconds.
 */

export type FieldKind = "time" | "text" | "keyword" | "numeric";

/** A schema with every list present and each field's kind looked up. */
export interface Schema {
  readonly time: string;
  readonly text: readonly string[];
  readonly keyword: readonly string[];
  readonly numeric: readonly string[];
  readonly kinds: ReadonlyMap<string, FieldKind>;
}

/** A document as stored: time in ms, one value (or null) per text, keyword and numeric field. */
export interface StoredDocument {
  readonly id: string;
  readonly time: number;
  readonly values: Readonly<Record<string, string | number | null>>;
}

export type Filter =
  | { readonly kind: "term"; readonly field: string; readonly values: readonly (string | number)[] }
  | { readonly kind: "prefix"; readonly field: string; readonly prefix: string }
  | { readonly kind: "range"; readonly field: string; readonly gte?: number; readonly gt?: number; readonly lte?: number; readonly lt?: number };

export interface MatchPlan {
  /** Undefined: no text condition. Empty: the text had nothing to search for, so nothing matches. */
  readonly terms?: readonly TextTerm[];
  readonly operator: "and" | "or";
  readonly filters: readonly Filter[];
}

export type SortKey = readonly (string | number)[];

export interface SearchPlan extends MatchPlan {
  readonly sort: "time" | "relevance";
  readonly pageSize: number;
  readonly totalLimit: number;
  /** Sort key of the last hit of the previous page: [time, id], or [score, time, id] by relevance. */
  readonly after?: SortKey;
  /** Names the query a page token belongs to. */
  readonly fingerprint: string;
}

export interface AggregatePlan extends MatchPlan {
  /** Counts by keyword value asked for (the request's `terms`). */
  readonly counts: readonly { readonly field: string; readonly size: number }[];
  /** The histogram's bucket width, when asked for. */
  readonly intervalMs?: number;
}

/** What an implementation answers a search with. */
export interface EngineHit {
  readonly document: StoredDocument;
  readonly score?: number;
  readonly sortKey: SortKey;
}

/** Storage operations of one logical index, behind the checks of `createDeclaredIndex`. */
export interface IndexEngine {
  index(documents: readonly StoredDocument[]): Promise<void>;
  /** Up to `limit` hits after `plan.after`, and the total counted up to `plan.totalLimit + 1` (more than the limit: a lower bound). */
  search(plan: SearchPlan, limit: number): Promise<{ hits: readonly EngineHit[]; total: number }>;
  aggregate(plan: AggregatePlan): Promise<{
    total: number;
    counts: readonly { field: string; buckets: readonly { value: string; count: number }[]; otherCount: number }[];
    histogram?: readonly { start: number; count: number }[];
  }>;
  /** Documents per UTC day (`YYYY-MM-DD`), oldest first. */
  days(): Promise<readonly { day: string; documents: number }[]>;
  /** Drops the days before the one starting at `dayStart` (ms); returns them. */
  dropDaysBefore(dayStart: number): Promise<readonly string[]>;
  /** Deletes documents older than `time` (ms); returns how many. */
  deleteBefore(time: number): Promise<number>;
  /** Removes the index: its documents, partitions and declaration. */
  drop(): Promise<void>;
}

const DAY_MS = 86_400_000;
const MAX_TIME = Date.UTC(9999, 11, 31, 23, 59, 59, 999);
const RESERVED = new Set(["id", "seq", "rowid", "rank", "oid", "search_tokens"]);
const FIELD_NAME = /^[a-z][a-z0-9_]{0,59}$/;
const INDEX_NAME = /^[a-z][a-z0-9_]{0,39}$/;
export const MAX_KEYWORD_LENGTH = 255;
export const MAX_TEXT_LENGTH = 65_536;
const MAX_TEXT_QUERY = 1000;
const MAX_FILTERS = 32;
const MAX_TERM_VALUES = 100;
const DEFAULT_PAGE_SIZE = 50;
const MAX_PAGE_SIZE = 1000;
const DEFAULT_TOTAL_LIMIT = 10_000;
const MAX_TOTAL_LIMIT = 1_000_000_000;
const MAX_VIOLATIONS = 20;

/** The UTC day of a time: `YYYY-MM-DD`. */
export function dayOf(time: number): string {
  return new Date(time).toISOString().slice(0, 10);
}

/** The first millisecond of the UTC day holding `time`. */
export function dayStart(time: number): number {
  return Math.floor(time / DAY_MS) * DAY_MS;
}

/** Checks an index name: `[a-z][a-z0-9_]*`, at most 40 characters (it names tables and OpenSearch indices). */
export function checkIndexName(name: string): void {
  if (typeof name !== "string" || !INDEX_NAME.test(name)) {
    throw invalidArgument([{ field: "name", description: "must match [a-z][a-z0-9_]* and have at most 40 characters" }]);
  }
}

export function normalizeSchema(schema: IndexSchema): Schema {
  const violations: FieldViolation[] = [];
  const kinds = new Map<string, FieldKind>();
  const add = (path: string, field: unknown, kind: FieldKind) => {
    if (typeof field !== "string" || !FIELD_NAME.test(field)) {
      violations.push({ field: path, description: "must match [a-z][a-z0-9_]* and have at most 60 characters" });
    } else if (RESERVED.has(field)) {
      violations.push({ field: path, description: `${JSON.stringify(field)} is reserved` });
    } else if (kinds.has(field)) {
      violations.push({ field: path, description: `${JSON.stringify(field)} is declared twice` });
    } else {
      kinds.set(field, kind);
    }
  };
  const list = (key: "text" | "keyword" | "numeric"): string[] => {
    const value = schema[key] ?? [];
    if (!Array.isArray(value)) {
      violations.push({ field: `schema.${key}`, description: "must be a list of field names" });
      return [];
    }
    value.forEach((f, i) => add(`schema.${key}[${i}]`, f, key));
    return [...value];
  };
  add("schema.time", schema.time, "time");
  const text = list("text");
  const keyword = list("keyword");
  const numeric = list("numeric");
  if (text.length === 0) violations.push({ field: "schema.text", description: "needs at least one full-text field" });
  if (violations.length > 0) throw invalidArgument(violations);
  return { time: schema.time, text, keyword, numeric, kinds };
}

/** The schema as stored beside an index, to tell a redeclaration from a changed schema. */
export function schemaDefinition(schema: Schema): string {
  return JSON.stringify({ time: schema.time, text: schema.text, keyword: schema.keyword, numeric: schema.numeric });
}

/** Checks documents; the last of several with one id wins. */
export function normalizeDocuments(schema: Schema, documents: readonly unknown[]): StoredDocument[] {
  if (!Array.isArray(documents)) throw invalidArgument([{ field: "documents", description: "must be a list" }]);
  const violations: FieldViolation[] = [];
  const byId = new Map<string, StoredDocument>();
  documents.forEach((doc, i) => {
    const path = `documents[${i}]`;
    if (doc === null || typeof doc !== "object") {
      violations.push({ field: path, description: "must be an object" });
      return;
    }
    const fields = doc as Record<string, unknown>;
    const { id } = fields;
    let ok = true;
    const fail = (field: string, description: string) => {
      ok = false;
      if (violations.length < MAX_VIOLATIONS) violations.push({ field: `${path}.${field}`, description });
    };
    if (typeof id !== "string" || !/^[\x21-\x7e]{1,128}$/.test(id)) fail("id", "must be 1-128 printable ASCII characters");
    const time = fields[schema.time];
    const ms = time instanceof Date ? time.getTime() : NaN;
    if (!(ms >= 0 && ms <= MAX_TIME)) fail(schema.time, "must be a valid Date between 1970 and 9999");
    const values: Record<string, string | number | null> = {};
    for (const [field, kind] of schema.kinds) {
      if (kind === "time") continue;
      const value = fields[field];
      if (value === undefined || value === null) {
        values[field] = null;
      } else if (kind === "numeric") {
        if (typeof value === "number" && Number.isFinite(value)) values[field] = value;
        else fail(field, "must be a finite number");
      } else if (typeof value !== "string") {
        fail(field, "must be a string");
      } else if (/\p{Cs}/u.test(value)) {
        fail(field, "must be valid Unicode (it holds a lone surrogate)");
      } else if (kind === "keyword" && [...value].length > MAX_KEYWORD_LENGTH) {
        fail(field, `must have at most ${MAX_KEYWORD_LENGTH} characters`);
      } else if (kind === "text" && value.length > MAX_TEXT_LENGTH) {
        fail(field, `must have at most ${MAX_TEXT_LENGTH} characters`);
      } else {
        values[field] = value;
      }
    }
    for (const field of Object.keys(fields)) {
      if (field !== "id" && !schema.kinds.has(field)) fail(field, "is not a field of this index");
    }
    if (ok) byId.set(id as string, { id: id as string, time: ms, values });
  });
  if (violations.length > 0) throw invalidArgument(violations);
  return [...byId.values()];
}

export function planMatch(schema: Schema, request: AggregateRequest<IndexSchema> | SearchRequest<IndexSchema>): MatchPlan {
  const violations: FieldViolation[] = [];
  let terms: TextTerm[] | undefined;
  const { text } = request;
  if (text !== undefined && typeof text !== "string") {
    violations.push({ field: "text", description: "must be a string" });
  } else if (text !== undefined && text.length > MAX_TEXT_QUERY) {
    violations.push({ field: "text", description: `must have at most ${MAX_TEXT_QUERY} characters` });
  } else if (text !== undefined && text.trim() !== "") {
    terms = parseTerms(text);
    if (terms.length > MAX_TERMS) violations.push({ field: "text", description: `must have at most ${MAX_TERMS} terms` });
  }
  const operator = request.operator ?? "and";
  if (operator !== "and" && operator !== "or") violations.push({ field: "operator", description: 'must be "and" or "or"' });
  const filters = planFilters(schema, request.filters ?? [], violations);
  if (violations.length > 0) throw invalidArgument(violations);
  return { ...(terms ? { terms } : {}), operator, filters };
}

function planFilters(schema: Schema, filters: readonly unknown[], violations: FieldViolation[]): Filter[] {
  if (!Array.isArray(filters)) {
    violations.push({ field: "filters", description: "must be a list" });
    return [];
  }
  if (filters.length > MAX_FILTERS) {
    violations.push({ field: "filters", description: `must have at most ${MAX_FILTERS} filters` });
    return [];
  }
  const out: Filter[] = [];
  filters.forEach((raw, i) => {
    const path = `filters[${i}]`;
    const filter = (raw ?? {}) as Record<string, unknown>;
    const field = filter.field;
    const kind = typeof field === "string" ? schema.kinds.get(field) : undefined;
    if (typeof field !== "string" || kind === undefined) {
      violations.push({ field: `${path}.field`, description: `${JSON.stringify(field)} is not a field of this index` });
      return;
    }
    const bounds = (["gte", "gt", "lte", "lt"] as const).filter((b) => filter[b] !== undefined);
    const shapes = [filter.term !== undefined, filter.prefix !== undefined, bounds.length > 0].filter(Boolean).length;
    if (shapes !== 1) {
      violations.push({ field: path, description: "must have exactly one of term, prefix or range bounds (gte, gt, lte, lt)" });
      return;
    }
    if (kind === "text") {
      violations.push({ field: `${path}.field`, description: `${field} is a full-text field: search it with text` });
    } else if (filter.term !== undefined) {
      const values = Array.isArray(filter.term) ? (filter.term as unknown[]) : [filter.term];
      const valid = kind === "numeric"
        ? values.every((v) => typeof v === "number" && Number.isFinite(v))
        : kind === "keyword" && values.every((v) => typeof v === "string");
      if (kind === "time") violations.push({ field: `${path}.term`, description: "time takes range bounds (gte, gt, lte, lt)" });
      else if (values.length === 0 || values.length > MAX_TERM_VALUES) violations.push({ field: `${path}.term`, description: `must hold 1-${MAX_TERM_VALUES} values` });
      else if (!valid) violations.push({ field: `${path}.term`, description: kind === "numeric" ? "must be finite numbers" : "must be strings" });
      else out.push({ kind: "term", field, values: values as (string | number)[] });
    } else if (filter.prefix !== undefined) {
      const prefix = filter.prefix;
      if (kind !== "keyword") violations.push({ field: `${path}.prefix`, description: "applies to keyword fields only" });
      else if (typeof prefix !== "string" || prefix === "" || [...prefix].length > MAX_KEYWORD_LENGTH || /\p{Cs}/u.test(prefix)) {
        violations.push({ field: `${path}.prefix`, description: `must be 1-${MAX_KEYWORD_LENGTH} characters` });
      } else out.push({ kind: "prefix", field, prefix });
    } else {
      if (kind === "keyword") {
        violations.push({ field: `${path}.field`, description: "range bounds apply to the time and numeric fields" });
        return;
      }
      const range: Record<string, number> = {};
      for (const b of bounds) {
        const v = filter[b];
        const n = kind === "time" ? (v instanceof Date ? v.getTime() : NaN) : typeof v === "number" ? v : NaN;
        if (Number.isNaN(n) || !Number.isFinite(n)) {
          violations.push({ field: `${path}.${b}`, description: kind === "time" ? "must be a valid Date" : "must be a finite number" });
          return;
        }
        range[b] = n;
      }
      out.push({ kind: "range", field, ...range });
    }
  });
  return out;
}

export function planSearch(schema: Schema, index: string, request: SearchRequest<IndexSchema>): SearchPlan {
  const match = planMatch(schema, request);
  const violations: FieldViolation[] = [];
  const sort = request.sort ?? "time";
  if (sort !== "time" && sort !== "relevance") violations.push({ field: "sort", description: 'must be "time" or "relevance"' });
  else if (sort === "relevance" && match.terms === undefined) violations.push({ field: "sort", description: "relevance needs a text to rank by" });
  const pageSize = request.pageSize ?? DEFAULT_PAGE_SIZE;
  if (!Number.isInteger(pageSize) || pageSize < 1 || pageSize > MAX_PAGE_SIZE) {
    violations.push({ field: "pageSize", description: `must be an integer from 1 to ${MAX_PAGE_SIZE}` });
  }
  const totalLimit = request.totalLimit ?? DEFAULT_TOTAL_LIMIT;
  if (!Number.isInteger(totalLimit) || totalLimit < 1 || totalLimit > MAX_TOTAL_LIMIT) {
    violations.push({ field: "totalLimit", description: `must be an integer from 1 to ${MAX_TOTAL_LIMIT}` });
  }
  if (violations.length > 0) throw invalidArgument(violations);
  const fingerprint = createHash("sha256")
    .update(JSON.stringify([index, match.terms?.map((t) => t.literal) ?? null, match.operator, match.filters, sort]))
    .digest("base64url")
    .slice(0, 16);
  const after = request.pageToken === undefined || request.pageToken === "" ? undefined : readPageToken(request.pageToken, fingerprint, sort);
  return { ...match, sort, pageSize, totalLimit, fingerprint, ...(after ? { after } : {}) };
}

/** A page token: the last hit's sort key and the query it belongs to, as base64url JSON. */
export function pageToken(after: SortKey, fingerprint: string): string {
  return Buffer.from(JSON.stringify({ a: after, q: fingerprint })).toString("base64url");
}

function readPageToken(token: string, fingerprint: string, sort: SearchPlan["sort"]): SortKey {
  let decoded: { a?: unknown; q?: unknown } | undefined;
  try {
    decoded = JSON.parse(Buffer.from(token, "base64url").toString("utf8")) as { a?: unknown; q?: unknown };
  } catch {
    decoded = undefined;
  }
  const a = decoded?.a;
  const shape = sort === "time" ? ["number", "string"] : ["number", "number", "string"];
  const valid = Array.isArray(a) && a.length === shape.length && a.every((v, i) => typeof v === shape[i] && (typeof v !== "number" || Number.isFinite(v)));
  if (!valid) throw invalidArgument([{ field: "pageToken", description: "is not a page token of this index" }]);
  if (decoded?.q !== fingerprint) {
    throw invalidArgument([{ field: "pageToken", description: "belongs to another query (text, operator, filters or sort changed)" }]);
  }
  return a as SortKey;
}

export function planAggregate(schema: Schema, request: AggregateRequest<IndexSchema>): AggregatePlan {
  const match = planMatch(schema, request);
  const violations: FieldViolation[] = [];
  const counts: { field: string; size: number }[] = [];
  const requested = request.terms ?? [];
  if (!Array.isArray(requested) || requested.length > MAX_FILTERS) {
    violations.push({ field: "terms", description: `must be a list of at most ${MAX_FILTERS} fields` });
  } else {
    requested.forEach((t, i) => {
      const size = t?.size ?? 10;
      if (schema.kinds.get(t?.field) !== "keyword") violations.push({ field: `terms[${i}].field`, description: `${JSON.stringify(t?.field)} is not a keyword field of this index` });
      else if (counts.some((c) => c.field === t.field)) violations.push({ field: `terms[${i}].field`, description: `${t.field} is asked for twice` });
      else if (!Number.isInteger(size) || size < 1 || size > MAX_PAGE_SIZE) violations.push({ field: `terms[${i}].size`, description: `must be an integer from 1 to ${MAX_PAGE_SIZE}` });
      else counts.push({ field: t.field, size });
    });
  }
  let intervalMs: number | undefined;
  if (request.histogram !== undefined) {
    const m = /^([1-9][0-9]{0,3})([mhd])$/.exec(String(request.histogram?.interval));
    if (!m) violations.push({ field: "histogram.interval", description: 'must be <n>m, <n>h or <n>d (n from 1 to 9999), e.g. "1h"' });
    else intervalMs = Number(m[1]) * { m: 60_000, h: 3_600_000, d: DAY_MS }[m[2] as "m" | "h" | "d"];
  }
  if (violations.length > 0) throw invalidArgument(violations);
  return { ...match, counts, ...(intervalMs ? { intervalMs } : {}) };
}
