import type { Migration } from "kysely";
import * as auditTables from "./2026_12_02_010000_audit_tables.js";

/** The audit domain's tables, by migration name (a UTC timestamp first). */
export const AUDIT_MIGRATIONS: Readonly<Record<string, Migration>> = {
  "2026_12_02_010000_audit_tables": auditTables,
};
