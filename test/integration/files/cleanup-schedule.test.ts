import { createLogger } from "../../../server/core/logger";
import type { SqlBackend } from "../../../server/backends/sql/sql-store";
import { FILES_CLEANUP_LEASE, scheduleFilesCleanup } from "../../../server/files/files.schedule";
import type { CleanupResult } from "../../../server/files/files.service";
import { openServiceSql } from "../../../server/schema";
import { describeEachDialect } from "../../support/sql-targets";
import { eventually } from "../../support/wait";

const NOTHING: CleanupResult = { dryRun: false, expiredFiles: 0, abandonedUploads: 0, abortedMultipartUploads: 0, orphanObjects: 0, missingObjects: 0, sessionFiles: 0, freedBytes: 0 };
const INTERVAL_MS = 150;

describeEachDialect("files cleanup schedule", (target) => {
  it("keeps a run that outlasts the interval the only one: its instance renews the lease while it runs, and the other instance waits", async () => {
    // Two instances' schedules over one database, each counting its lease attempts.
    const backends = await Promise.all([openServiceSql(target().url), openServiceSql(target().url)]);
    const attempts: Record<string, number> = { a: 0, b: 0 };
    const leases = (backend: SqlBackend, name: string): Pick<SqlBackend, "acquireLease"> => ({
      acquireLease: (lease, holder, ttlMs) => {
        if (lease === FILES_CLEANUP_LEASE && holder === name) attempts[name]!++;
        return backend.acquireLease(lease, holder, ttlMs);
      },
    });
    const events: string[] = [];
    let release = () => {};
    const released = new Promise<void>((resolve) => (release = resolve));
    // The first run (on whichever instance wins the lease) lasts until the test releases it.
    const run = (name: string) => async () => {
      events.push(`start ${name}`);
      if (events.length === 1) await released;
      events.push(`end ${name}`);
      return NOTHING;
    };
    const logger = createLogger("silent");
    const schedules = ["a", "b"].map((name, i) => scheduleFilesCleanup(leases(backends[i]!, name), INTERVAL_MS, name, logger, run(name)));
    try {
      await eventually(async () => events.length > 0);
      const first = events[0]!.slice("start ".length);
      const other = first === "a" ? "b" : "a";
      // The other instance tries at each of its ticks: eight of them reach well past the lease's first term.
      const before = attempts[other]!;
      await eventually(async () => attempts[other]! >= before + 8);
      expect(events).toEqual([`start ${first}`]);
      release();
      await eventually(async () => events.includes(`end ${first}`));
    } finally {
      release();
      for (const schedule of schedules) await schedule.stop();
      for (const backend of backends) await backend.close();
    }
  });
});
