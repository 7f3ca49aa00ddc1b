import { openSqlBackend, type SqlBackend, type SqlBackendOptions } from "./backends/sql/sql-backend.js";
import { MODULES } from "./modules.js";
import { schemaOf } from "./platform/start-modules.js";

/** The service's whole schema: the platform's tables and every module's (server/modules.ts). */
export const SCHEMA = schemaOf(MODULES);

/** The SQL store at `url`, migrated to the service's whole schema (what the service itself opens; for tools and tests). */
export function openServiceSql(url: string, options: Omit<SqlBackendOptions, "migrations"> = {}): Promise<SqlBackend> {
  return openSqlBackend(url, { ...options, migrations: SCHEMA });
}
