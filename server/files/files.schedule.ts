import type { SqlBackend } from "../backends/sql/sql-store.js";
import type { Logger } from "../core/logger.js";
import type { CleanupResult } from "./files.service.js";

export interface FilesCleanupSchedule {
  /** No more runs; resolves once a run in progress has ended (so the stores can be closed after it). */
  stop(): Promise<void>;
}

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
  let running: Promise<void> | undefined;
  const timer = setInterval(() => {
    if (running) return;
    running = (async () => {
      if (!(await sql.acquireLease(FILES_CLEANUP_LEASE, holder, intervalMs))) return;
      const renewal = setInterval(() => {
        sql.acquireLease(FILES_CLEANUP_LEASE, holder, intervalMs).then(
          (kept) => {
            if (!kept) logger.warn({ lease: FILES_CLEANUP_LEASE }, "the files cleanup lease lapsed during a run (another instance holds it)");
          },
          (err: unknown) => logger.warn({ err }, "renewing the files cleanup lease failed; the next renewal retries"),
        );
      }, Math.max(1, Math.floor(intervalMs / 3)));
      renewal.unref();
      const started = Date.now();
      try {
        const result = await run();
        logger.info({ ...result, durationMs: Date.now() - started }, "scheduled files cleanup done");
      } finally {
        clearInterval(renewal);
      }
    })()
      .catch((err: unknown) => logger.warn({ err }, "scheduled files cleanup failed; the next run retries"))
      .finally(() => (running = undefined));
  }, intervalMs);
  timer.unref();
  return {
    async stop() {
      clearInterval(timer);
      await running;
    },
  };
}
