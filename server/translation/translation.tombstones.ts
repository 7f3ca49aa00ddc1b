import { sql, type Kysely } from "kysely";
import type { PatchGroups } from "../core/patch.js";
import type { SqlDialect } from "../backends/sql/sql-store.js";
import { restorePatch, type Patch } from "../core/patch.js";
import type { TranslationTables } from "./translation.table.js";

/**
 * Drops, inside the flush transaction, every field of every record stamped at or before its
 * session's deletion, so a deleted session stays deleted whichever instance flushes late. On MySQL
 * the tombstone rows (and gaps) are share-locked: a delete that commits meanwhile waits for this
 * flush, then removes what it wrote.
 */
export function createTombstoneGuard(dialect: SqlDialect) {
  return async (trx: Kysely<unknown>, groups: PatchGroups): Promise<PatchGroups> => {
    const sessions = new Set<string>();
    for (const group of groups) for (const patch of group.patches) sessions.add(patch.key[0]!);
    const query = (trx as Kysely<TranslationTables>)
      .selectFrom("translation_tombstones")
      .select(["session_id", "deleted_at"])
      .where("session_id", "in", [...sessions]);
    const rows = await (dialect === "mysql" ? query.modifyEnd(sql`lock in share mode`) : query).execute();
    if (rows.length === 0) return groups;
    const deletedAt = new Map(rows.map((r) => [r.session_id, Number(r.deleted_at)]));
    return groups.map(({ table, patches }) => ({
      table,
      patches: patches.flatMap((patch) => {
        const cutoff = deletedAt.get(patch.key[0]!);
        if (cutoff === undefined) return [patch];
        const kept = trimmed(patch, cutoff);
        return kept ? [kept] : [];
      }),
    }));
  };
}

/** The fields of `patch` stamped after `cutoff`, or undefined when none are. */
function trimmed(patch: Patch, cutoff: number): Patch | undefined {
  if (patch.stamp <= cutoff) return undefined;
  const fields = [...patch.fields].filter(([, [, stamp]]) => stamp > cutoff).map(([c, [v, s]]) => [c, v, s] as const);
  return restorePatch(patch.table, patch.key, patch.stamp, fields);
}
