import type { SqlBackend } from "../backends/sql/sql-store.js";
import type { Logger } from "../core/logger.js";
import { scheduleUnderLease, type LeaseSchedule } from "../platform/lease-schedule.js";
import type { CleanupResult } from "./files.service.js";

export type FilesCleanupSchedule = LeaseSchedule;

/** The database lease every instance's schedule takes before a run. */
export const FILES_CLEANUP_LEASE = "files-cleanup";

/**
 * Runs `run` (the files cleanup with the default retention) every `intervalMs` on one instance at a
 * time: each run first takes the database lease "files-cleanup" for the interval, and renews it every
 * third of the interval while it lasts, so a run longer than the interval (many files to delete, a slow
 * store) never has a second instance start one beside it.
 */
export function scheduleFilesCleanup(
  sql: Pick<SqlBackend, "acquireLease">,
  intervalMs: number,
  holder: string,
  logger: Logger,
  run: () => Promise<CleanupResult>,
): FilesCleanupSchedule {
  return scheduleUnderLease({
    sql,
    lease: FILES_CLEANUP_LEASE,
    intervalMs,
    holder,
    logger,
    run,
    done: (result, durationMs) => logger.info({ ...result, durationMs }, "scheduled files cleanup done"),
    failed: "scheduled files cleanup failed; the next run retries",
  });
}
