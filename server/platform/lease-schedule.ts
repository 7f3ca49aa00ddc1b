import type { SqlBackend } from "../backends/sql/sql-store.js";
import type { Logger } from "../core/logger.js";

export interface LeaseSchedule {
  /** No more runs; resolves once a run in progress has ended (so the stores can be closed after it). */
  stop(): Promise<void>;
}

export interface LeaseScheduleOptions<R> {
  readonly sql: Pick<SqlBackend, "acquireLease">;
  /** The database lease every instance's schedule takes before a run, e.g. "files-cleanup". */
  readonly lease: string;
  readonly intervalMs: number;
  /** This instance, as the lease knows it. */
  readonly holder: string;
  readonly logger: Logger;
  readonly run: () => Promise<R>;
  /** Logs a finished run (its result and how long it took). */
  readonly done: (result: R, durationMs: number) => void;
  /** What the log says when a run fails, e.g. "scheduled cleanup failed; the next run retries". */
  readonly failed: string;
}

/**
 * Runs `run` every `intervalMs` on one instance at a time: each run first takes the lease for the
 * interval, and renews it every third of the interval while it lasts, so a run longer than the
 * interval never has a second instance start one beside it. After a run the lease is left to expire:
 * the next run, on any instance, starts one interval after the last renewal at the earliest.
 */
export function scheduleUnderLease<R>(options: LeaseScheduleOptions<R>): LeaseSchedule {
  const { sql, lease, intervalMs, holder, logger } = options;
  let running: Promise<void> | undefined;
  const timer = setInterval(() => {
    if (running) return;
    running = (async () => {
      if (!(await sql.acquireLease(lease, holder, intervalMs))) return;
      const renewal = setInterval(() => {
        sql.acquireLease(lease, holder, intervalMs).then(
          (kept) => {
            if (!kept) logger.warn({ lease }, "a scheduled run's lease lapsed during the run (another instance holds it)");
          },
          (err: unknown) => logger.warn({ err, lease }, "renewing a scheduled run's lease failed; the next renewal retries"),
        );
      }, Math.max(1, Math.floor(intervalMs / 3)));
      renewal.unref();
      const started = Date.now();
      try {
        options.done(await options.run(), Date.now() - started);
      } finally {
        clearInterval(renewal);
      }
    })()
      .catch((err: unknown) => logger.warn({ err }, options.failed))
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
