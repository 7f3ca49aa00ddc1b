import type { Kysely } from "kysely";
import type { SqlBackend } from "../backends/sql/sql-store.js";
import type { DeclaredIndex } from "../backends/search/search-index.js";
import type { Logger } from "../core/logger.js";
import { scheduleUnderLease, type LeaseSchedule } from "../platform/lease-schedule.js";
import type { AuditTables } from "./audit.fields.js";
import type { AuditSchema } from "./audit.projection.js";

const DAY_MS = 86_400_000;
/** Entries removed per transaction, so that no lock is held long. */
const DELETE_BATCH = 1000;

export interface RetentionResult {
  /** Entries removed from the record. */
  readonly removed: number;
  /** Daily search partitions dropped. */
  readonly droppedPartitions: readonly string[];
  /** The first UTC day kept (YYYY-MM-DD). */
  readonly keptFrom: string;
}

/** Midnight UTC `days` days before the UTC day of `now`. */
export function retentionCutoff(now: number, days: number): Date {
  return new Date(Math.floor(now / DAY_MS) * DAY_MS - days * DAY_MS);
}

/**
 * Removes, by whole UTC days, entries committed before the cutoff: a prefix of the chain, in
 * batches, each batch moving the chain's `anchor` to its last entry in the same transaction, so the
 * remaining chain still verifies from its first entry. The search index drops its daily partitions
 * before the cutoff the same way.
 */
export async function enforceRetention(db: Kysely<AuditTables>, index: DeclaredIndex<AuditSchema>, days: number, now = Date.now()): Promise<RetentionResult> {
  const cutoff = retentionCutoff(now, days);
  const before = cutoff.getTime() * 1000;
  let removed = 0;
  for (;;) {
    const batch = await db.transaction().execute(async (trx) => {
      const rows = await trx.selectFrom("audit_logs").select(["seq", "hash", "recorded_at"]).orderBy("seq").limit(DELETE_BATCH).execute();
      // Commit times grow along the chain: the expired entries are the leading run older than the cutoff.
      const kept = rows.findIndex((r) => Number(r.recorded_at) >= before);
      const expired = kept === -1 ? rows : rows.slice(0, kept);
      const last = expired[expired.length - 1];
      if (!last) return 0;
      await trx.deleteFrom("audit_logs").where("seq", "<=", last.seq).execute();
      await trx.updateTable("audit_chain").set({ seq: last.seq, hash: last.hash, recorded_at: last.recorded_at }).where("name", "=", "anchor").execute();
      return expired.length;
    });
    removed += batch;
    if (batch < DELETE_BATCH) break;
  }
  const droppedPartitions = await index.dropPartitionsBefore(cutoff);
  return { removed, droppedPartitions, keptFrom: cutoff.toISOString().slice(0, 10) };
}

export type RetentionSchedule = LeaseSchedule;

/** Runs the retention every `intervalMs` on one instance at a time (the lease "audit-retention", kept while a run lasts). */
export function scheduleRetention(
  sql: Pick<SqlBackend, "acquireLease">,
  intervalMs: number,
  holder: string,
  logger: Logger,
  run: () => Promise<RetentionResult>,
): RetentionSchedule {
  return scheduleUnderLease({
    sql,
    lease: "audit-retention",
    intervalMs,
    holder,
    logger,
    run,
    done: (result, durationMs) =>
      logger.info({ removed: result.removed, dropped_partitions: result.droppedPartitions.length, kept_from: result.keptFrom, durationMs }, "audit retention done"),
    failed: "audit retention failed; the next run retries",
  });
}
