import { invalidArgument } from "./errors.js";

/** Most items one page may hold, and the page size when none is asked for. */
export const MAX_PAGE_SIZE = 100;
export const DEFAULT_PAGE_SIZE = 20;

/** Where the next page starts: the sort key of the last item served, bound to the query it came from. */
export interface Cursor {
  /** Sort-key values of the last item, in order. */
  readonly after: readonly (string | number)[];
  /** The page number the cursor leads to. */
  readonly page: number;
}

export interface PageRequest {
  /** 1-based page number. */
  readonly page: number;
  readonly pageSize: number;
  /** Keyset position when the caller sent a page_token. */
  readonly cursor?: Cursor;
}

/**
 * Reads page, page_size and page_token. A token is opaque to callers (base64url JSON) and only
 * valid for the query it was issued for: `fingerprint` names the filters and sort.
 */
export function pageRequest(req: { page: number; pageSize: number; pageToken: string }, fingerprint: string): PageRequest {
  if (req.pageSize < 0 || req.pageSize > MAX_PAGE_SIZE) {
    throw invalidArgument([{ field: "page_size", description: `must be between 1 and ${MAX_PAGE_SIZE}` }]);
  }
  if (req.page < 0) throw invalidArgument([{ field: "page", description: "must be 1 or more" }]);
  const pageSize = req.pageSize || DEFAULT_PAGE_SIZE;
  if (!req.pageToken) return { page: req.page || 1, pageSize };
  let decoded: { a?: unknown; n?: unknown; q?: unknown };
  try {
    decoded = JSON.parse(Buffer.from(req.pageToken, "base64url").toString("utf8")) as typeof decoded;
  } catch {
    throw invalidArgument([{ field: "page_token", description: "is not a token this service issued" }]);
  }
  const valid =
    Array.isArray(decoded.a) &&
    decoded.a.every((v) => typeof v === "string" || typeof v === "number") &&
    typeof decoded.n === "number" &&
    decoded.q === fingerprint;
  if (!valid) throw invalidArgument([{ field: "page_token", description: "does not belong to this query (filters or sort changed)" }]);
  return { page: decoded.n as number, pageSize, cursor: { after: decoded.a as (string | number)[], page: decoded.n as number } };
}

/** The token for the page after `page`, positioned after the sort key `after`. */
export function nextPageToken(after: readonly (string | number)[], page: number, fingerprint: string): string {
  return Buffer.from(JSON.stringify({ a: after, n: page + 1, q: fingerprint })).toString("base64url");
}

/** total, page, page_size and total_pages of a listing. */
export function pageFigures(total: number, request: PageRequest) {
  return { total, page: request.page, pageSize: request.pageSize, totalPages: Math.ceil(total / request.pageSize) };
}
