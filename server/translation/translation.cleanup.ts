import type { Kysely } from "kysely";
import type { SqlBackend, SqlDialect } from "../backends/sql/sql-store.js";
import { invalidArgument } from "../core/errors.js";
import type { Logger } from "../core/logger.js";
import { scheduleUnderLease, type LeaseSchedule } from "../platform/lease-schedule.js";
import * as repo from "./translation.repository.js";
import type { TranslationTables } from "./translation.table.js";

const DAY_MICROS = 86_400_000_000;
/** Sessions purged per round trip; each session's tasks go in slices of their own. */
const SESSIONS_PER_ROUND = 200;

/** Days after their last update that sessions in each status are kept. */
export const DEFAULT_RETENTION_DAYS = { completed: 90, failed: 30, cancelled: 30 } as const;

export interface CleanupRequest {
  readonly completedDays?: number;
  readonly failedDays?: number;
  readonly cancelledDays?: number;
  readonly dryRun: boolean;
}

export interface CleanupResult {
  dryRun: boolean;
  deletedSessions: number;
  deletedTasks: number;
  /** Sessions deleted (or to delete) per status; soft-deleted sessions count under "deleted". */
  sessionsByStatus: Record<string, number>;
}

/**
 * Deletes sessions (and their tasks) whose last update is older than their status's retention, and
 * every soft-deleted session. No cap: it goes on in small slices until nothing is left, so no lock
 * is held long. A dry run counts what would go.
 */
export async function cleanupSessions(db: Kysely<TranslationTables>, dialect: SqlDialect, request: CleanupRequest): Promise<CleanupResult> {
  const days = {
    completed: request.completedDays ?? DEFAULT_RETENTION_DAYS.completed,
    failed: request.failedDays ?? DEFAULT_RETENTION_DAYS.failed,
    cancelled: request.cancelledDays ?? DEFAULT_RETENTION_DAYS.cancelled,
  };
  const violations = Object.entries(days)
    .filter(([, n]) => !Number.isInteger(n) || n < 1)
    .map(([status]) => ({ field: `${status}_days`, description: "must be 1 or more" }));
  if (violations.length > 0) throw invalidArgument(violations);

  const now = Date.now() * 1000;
  const result: CleanupResult = { dryRun: request.dryRun, deletedSessions: 0, deletedTasks: 0, sessionsByStatus: {} };
  const targets: { label: string; expired: repo.ExpiredSessions }[] = [
    ...Object.entries(days).map(([status, n]) => ({ label: status, expired: { status, updatedBefore: now - n * DAY_MICROS } })),
    { label: "deleted", expired: { softDeleted: true } },
  ];
  for (const { label, expired } of targets) {
    if (request.dryRun) {
      const { sessions, tasks } = await repo.countExpired(db, expired);
      result.sessionsByStatus[label] = sessions;
      result.deletedSessions += sessions;
      result.deletedTasks += tasks;
      continue;
    }
    let count = 0;
    for (;;) {
      const ids = await repo.expiredSessionIds(db, expired, SESSIONS_PER_ROUND);
      for (const id of ids) result.deletedTasks += await repo.purgeSession(db, dialect, id);
      count += ids.length;
      if (ids.length < SESSIONS_PER_ROUND) break;
    }
    result.sessionsByStatus[label] = count;
    result.deletedSessions += count;
  }
  return result;
}

export type CleanupSchedule = LeaseSchedule;

/**
 * Runs the cleanup with the default retention every `intervalMs`, on one instance at a time: each
 * run first takes the database lease "translation-cleanup" for the interval and keeps it while it lasts
 * (see scheduleUnderLease). `run` is the cleanup
 * itself (default: `cleanupSessions` with the default retention).
 */
export function scheduleCleanup(
  sql: Pick<SqlBackend, "db" | "dialect" | "acquireLease">,
  intervalMs: number,
  holder: string,
  logger: Logger,
  run: () => Promise<CleanupResult> = () => cleanupSessions(sql.db.withTables<TranslationTables>(), sql.dialect, { dryRun: false }),
): CleanupSchedule {
  return scheduleUnderLease({
    sql,
    lease: "translation-cleanup",
    intervalMs,
    holder,
    logger,
    run,
    done: (result, durationMs) => logger.info({ ...result, durationMs }, "scheduled cleanup done"),
    failed: "scheduled cleanup failed; the next run retries",
  });
}
