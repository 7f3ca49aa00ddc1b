import { AuditResult } from "../../gen/persistence/v1/audit_pb.js";
import type { Kysely } from "kysely";
import type { Logger } from "../core/logger.js";
import type { AuditTables } from "./audit.fields.js";
import type { AuditInput } from "./audit.service.js";

/** The action of an entry that stands in the chain for one the database refused. */
export const GAP_ACTION = "audit.gap";
const GAP_PREFIX = "gap-";

/**
 * No silent holes: an entry the database refuses goes, like any write path's refused record, to the
 * dead letters (whole, with the reason), and an explicit gap entry naming it is chained in its place,
 * so the chain shows that an entry is missing, which one, and where to find it. Gap ids come from the
 * dead letter's id, so finding the same dead letter again (at the next start) adds nothing twice.
 */
export interface GapChainer {
  /** Chains a gap entry for every dead letter of this write path after the last one seen. */
  catchUp(): Promise<void>;
}

export function createGapChainer(db: Kysely<AuditTables>, writePath: string, write: (entries: AuditInput[]) => Promise<unknown>, logger: Logger): GapChainer {
  let seen = 0;
  let running: Promise<void> | undefined;
  const runOnce = async () => {
    const letters = await db
      .selectFrom("dead_letters")
      .select(["id", "record_key", "reason", "failed_at"])
      .where("write_path", "=", writePath)
      .where("id", ">", seen)
      .orderBy("id")
      .limit(1000)
      .execute();
    const gaps: AuditInput[] = [];
    for (const letter of letters) {
      seen = Math.max(seen, Number(letter.id));
      const key = (JSON.parse(letter.record_key) as string[])[0] ?? "";
      if (key.startsWith(GAP_PREFIX)) {
        logger.error({ dead_letter: letter.id, key }, "a gap entry was refused too; the dead letter stays the only trace");
        continue;
      }
      gaps.push({
        id: `${GAP_PREFIX}${writePath}-${letter.id}`,
        action: GAP_ACTION,
        result: AuditResult.FAILURE,
        actor: { type: "system", id: "audit" },
        resource: { type: "audit_entry", id: key.slice(0, 255) },
        message: `entry ${key} was refused by the database and kept in the dead letters (id ${letter.id}): ${letter.reason}`.slice(0, 4000),
        details: { dead_letter_id: Number(letter.id), refused_id: key, reason: letter.reason.slice(0, 2000), failed_at_us: Number(letter.failed_at) },
      });
    }
    if (gaps.length > 0) {
      await write(gaps);
      logger.warn({ gaps: gaps.length }, "refused audit entries chained as gap entries");
    }
  };
  return {
    catchUp() {
      running ??= runOnce()
        .catch((err: unknown) => logger.error({ err }, "gap entries for refused audit entries not chained yet; the next start retries"))
        .finally(() => (running = undefined));
      return running;
    },
  };
}
