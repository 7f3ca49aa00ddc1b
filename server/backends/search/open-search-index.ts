import type { SqlBackend } from "../sql/sql-store.js";
import { createOpenSearchIndex } from "./opensearch.js";
import type { SearchIndex } from "./search-index.js";
import { createSqlSearchIndex } from "./sql.js";

export interface SearchIndexOptions {
  /** `PERSISTENCE_OPENSEARCH_URL`: when set, OpenSearch holds the indexes. */
  readonly opensearchUrl?: string;
  /** The SQL store that holds them otherwise (the embedded default: SQLite FTS5, or MariaDB FULLTEXT). */
  readonly sql?: SqlBackend;
  /** OpenSearch only: put before every index and template name (default none), to share a cluster. */
  readonly opensearchPrefix?: string;
}

/** The one place that picks the `search` implementation: OpenSearch when a URL is given, else the SQL store. */
export async function openSearchIndex(options: SearchIndexOptions): Promise<SearchIndex> {
  if (options.opensearchUrl) {
    return createOpenSearchIndex({ url: options.opensearchUrl, ...(options.opensearchPrefix ? { prefix: options.opensearchPrefix } : {}) });
  }
  if (!options.sql) throw new Error("the search role needs PERSISTENCE_OPENSEARCH_URL or a SQL store");
  return createSqlSearchIndex(options.sql);
}
