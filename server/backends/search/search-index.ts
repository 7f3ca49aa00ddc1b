import type { Backend } from "../backend.js";

/**
 * The `search` role: full-text indexes with filters, newest-first cursor paging and counts, spread
 * over daily partitions for retention. A caller declares a logical index once (`audit_logs`) and
 * gets a handle; the role decides where documents live (one SQL table per logical index, or one
 * OpenSearch index per day). Matching rules, totals and partitions are described in the README
 * (Backends → search) and hold on every implementation; the contract suite checks them.
 */
export interface SearchIndex extends Backend {
  /** "sqlite", "mysql" or "opensearch". */
  readonly kind: string;
  /**
   * Creates the logical index (tables, or an index template) if missing and returns its handle.
   * Declaring it again with the same schema is a no-op; with another one (other fields, or the
   * same in another order) it fails with FAILED_PRECONDITION: the stored documents follow the first.
   */
  declareIndex<const S extends IndexSchema>(name: string, schema: S): Promise<DeclaredIndex<S>>;
}

/**
 * The fields of a logical index, by kind. Field names are lowercase `[a-z][a-z0-9_]*` (at most 60
 * characters), unique across kinds; `id`, `seq`, `rowid`, `rank`, `oid`, `search_tokens` and names
 * starting with `_` are taken.
 */
export interface IndexSchema {
  /** The document's time: orders results newest first, bounds time ranges, picks the day partition. */
  readonly time: string;
  /** Full-text fields (at least one), searched by `text` and ranked by relevance; up to 65,536 characters each. */
  readonly text: readonly string[];
  /** Exact values of up to 255 characters: term and prefix filters, counts by value. */
  readonly keyword?: readonly string[];
  /** Finite numbers: term and range filters. */
  readonly numeric?: readonly string[];
}

type Names<L> = L extends readonly (infer N extends string)[] ? N : never;
export type TimeField<S extends IndexSchema> = S["time"];
export type TextField<S extends IndexSchema> = Names<S["text"]>;
export type KeywordField<S extends IndexSchema> = Names<S["keyword"]>;
export type NumericField<S extends IndexSchema> = Names<S["numeric"]>;

/**
 * One document: its id (1-128 printable ASCII characters, unique in the logical index), its time,
 * and any of its other fields (absent or null: no value).
 */
export type SearchDocument<S extends IndexSchema> = { readonly id: string } & { readonly [K in TimeField<S>]: Date } & {
  readonly [K in TextField<S> | KeywordField<S>]?: string | null;
} & { readonly [K in NumericField<S>]?: number | null };

/** A filter on one field; every filter of a query must hold. */
export type SearchFilter<S extends IndexSchema> =
  /** The field has this value, or one of these values (up to 100). */
  | { readonly field: KeywordField<S>; readonly term: string | readonly string[] }
  | { readonly field: NumericField<S>; readonly term: number | readonly number[] }
  /** The field's value starts with this prefix (case-sensitive, at least one character). */
  | { readonly field: KeywordField<S>; readonly prefix: string }
  /** The time lies within these bounds (at least one). */
  | { readonly field: TimeField<S>; readonly gte?: Date; readonly gt?: Date; readonly lte?: Date; readonly lt?: Date }
  | { readonly field: NumericField<S>; readonly gte?: number; readonly gt?: number; readonly lte?: number; readonly lt?: number };

/** What to match: free text and filters, shared by searches and counts. */
export interface MatchRequest<S extends IndexSchema> {
  /**
   * Free text, up to 1,000 characters and 32 terms. Terms are separated by spaces; "double quotes"
   * make one term of several words, matched as a phrase. No character is an operator. Absent or
   * blank: every document matches; a text without letters or digits matches none.
   */
  readonly text?: string;
  /** "and" (the default): every term must match; "or": any term, documents matching more ranking higher. */
  readonly operator?: "and" | "or";
  /** Filters that must all hold (up to 32). */
  readonly filters?: readonly SearchFilter<S>[];
}

export interface SearchRequest<S extends IndexSchema> extends MatchRequest<S> {
  /** "time" (the default): newest first. "relevance": best match first, then newest; needs `text`. */
  readonly sort?: "time" | "relevance";
  /** Hits per page, 1-1000 (default 50). */
  readonly pageSize?: number;
  /** The `nextPageToken` of the previous page of the same query (same text, operator, filters and sort). */
  readonly pageToken?: string;
  /**
   * Count matches exactly up to this many (default 10,000, like OpenSearch's `track_total_hits`);
   * beyond it the total is `{ value: totalLimit, relation: "gte" }`. Up to 1,000,000,000.
   */
  readonly totalLimit?: number;
}

export interface SearchHit<S extends IndexSchema> {
  readonly document: SearchDocument<S>;
  /** Relevance, higher is better (relevance sort only); comparable within one result, not across indexes or backends. */
  readonly score?: number;
}

export interface SearchPage<S extends IndexSchema> {
  readonly hits: readonly SearchHit<S>[];
  /** Matches of the whole query (not only the rest after this page): exact, or a lower bound past `totalLimit`. */
  readonly total: { readonly value: number; readonly relation: "eq" | "gte" };
  /** Absent on the last page. */
  readonly nextPageToken?: string;
}

export interface AggregateRequest<S extends IndexSchema> extends MatchRequest<S> {
  /** Counts by value of keyword fields: each field's `size` (1-1000, default 10) most frequent values. */
  readonly terms?: readonly { readonly field: KeywordField<S>; readonly size?: number }[];
  /** Counts by time bucket of a fixed interval (`<n>m`, `<n>h` or `<n>d`: "15m", "1h", "1d"), aligned to UTC midnight. */
  readonly histogram?: { readonly interval: string };
}

export interface TermCounts<S extends IndexSchema> {
  readonly field: KeywordField<S>;
  /** Most frequent first, ties by value. */
  readonly buckets: readonly { readonly value: string; readonly count: number }[];
  /** Matching documents with another value of the field (documents without one are not counted). */
  readonly otherCount: number;
}

export interface AggregateResult<S extends IndexSchema> {
  /** Matching documents, exact. */
  readonly total: number;
  /** One entry per requested field, in request order. */
  readonly terms: readonly TermCounts<S>[];
  /** Non-empty buckets, oldest first (when asked for). */
  readonly histogram?: readonly { readonly start: Date; readonly count: number }[];
}

/** One day of a logical index. */
export interface IndexPartition {
  /** `<index>-YYYY.MM.DD`: the daily index name of SPEC §6 (on OpenSearch behind the configured prefix); the same label on SQL. */
  readonly name: string;
  /** The UTC day, `YYYY-MM-DD`. */
  readonly day: string;
  readonly documents: number;
}

/** A declared logical index. Errors are ConnectErrors: INVALID_ARGUMENT names the offending field. */
export interface DeclaredIndex<S extends IndexSchema> {
  readonly name: string;
  readonly schema: S;
  /**
   * Adds or replaces documents by id (the last one wins when an id repeats in one call). Searchable
   * when the promise resolves. A document keeps its time: its day picks its partition.
   */
  index(documents: readonly SearchDocument<S>[]): Promise<void>;
  /** One page of matches. */
  search(request: SearchRequest<S>): Promise<SearchPage<S>>;
  /** Counts of the matches: total, by keyword value, by time bucket. */
  aggregate(request: AggregateRequest<S>): Promise<AggregateResult<S>>;
  /** The days holding documents, oldest first. */
  partitions(): Promise<readonly IndexPartition[]>;
  /** Drops every partition of a UTC day before `day`'s UTC day; returns the names of those dropped. */
  dropPartitionsBefore(day: Date): Promise<readonly string[]>;
  /** Deletes every document older than `time` (whole days first, then the rest of `time`'s day); returns how many. */
  deleteBefore(time: Date): Promise<number>;
  /** Removes the whole index (documents, partitions, schema); this handle is unusable afterwards, and declaring it again starts empty. */
  drop(): Promise<void>;
}
