import type { SqlBackend } from "../backends/sql/sql-store.js";
import type { Logger } from "../core/logger.js";
import type { CleanupResult } from "./files.service.js";

export interface FilesCleanupSchedule {
  /** No more runs; resolves once a run in progress has ended (so the stores can be closed after it). */
  stop(): Promise<void>;
}

/**
 * Runs `run` (the files cleanup with the default retention) every `intervalMs` on one instance at a
 * time: each run first takes the database lease "files-cleanup" for the interval.
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
      if (!(await sql.acquireLease("files-cleanup", holder, intervalMs))) return;
      const result = await run();
      logger.info({ ...result }, "scheduled files cleanup done");
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
